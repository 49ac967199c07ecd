"""The mobile-money provider simulator with its faults (duplicates, typos, late callbacks,
reversals) against the running app: the books stay straight."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from backoffice.config import Settings
from devtools.mobile_money import Faults, Payer, Simulator
from tests.support import count
from tests.support.money import MONEY_NOW, SHORTCODE, WEBHOOK_SECRET, make_accounts, make_products

pytestmark = pytest.mark.clock(MONEY_NOW)


def test_provider_simulator_with_faults_keeps_the_books_straight(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    accounts = make_accounts(conn, money_settings, flexible, 10, "SIM")
    payers = [Payer(a.number, "605.00") for a in accounts]
    faults = Faults(duplicate=0.3, typo=0.2, late=0.2, reversal=0.2, late_seconds=0.5)
    sim = Simulator(server, payers, SHORTCODE, faults, "wing", WEBHOOK_SECRET, seed=5)
    result = asyncio.run(sim.run(rate=50, count=40))
    assert not result.errors and result.sent == 40
    assert result.by_kind.get("duplicate") and result.by_kind.get("typo") and result.by_kind.get("reversed")
    # One inbox row per payment, whatever the duplicates (those reversed were made through the webhook,
    # since only a payment's own provider can reverse it; the reversals themselves are rows of their own).
    status = dict(conn.execute("select status, count(*) from payment_inbox where status <> 'reversal' group by 1"))
    assert sum(status.values()) == 40
    assert count(conn, "select count(*) from payment_inbox where status = 'reversal'") == result.by_kind["reversed"]
    assert status.get("unmatched", 0) + count(
        conn, "select count(*) from payment_inbox i join unmatched_payments u on u.inbox_id = i.id "
        "where i.status = 'reversed'")  == result.by_kind["typo"]  # fmt: skip
    assert status.get("reversed", 0) == result.by_kind["reversed"]
    for acct in accounts:  # credit and ledger agree, unit by unit
        paid = count(conn, "select paid_total from contracts where id = %s", acct.contract_id)
        booked = count(conn, "select coalesce(sum(amount), 0) from ledger_entries where contract_id = %s "
                        "and status = 'completed'", acct.contract_id)  # fmt: skip
        assert paid == booked
