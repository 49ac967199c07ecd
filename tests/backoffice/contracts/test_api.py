"""Ending a contract: the money still comes in and is kept, but buys no more light: it waits for finance
(issue 21: it used to be booked to the ended contract, and earned its agent a commission)."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from tests.support import count
from tests.support.money import MONEY_NOW, confirmation, make_accounts, make_products
from tests.support.staff import api_token

pytestmark = pytest.mark.clock(MONEY_NOW)


def test_ended_contract_keeps_payments_for_finance_and_buys_no_light(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "END")[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "500"))
    url = f"{server}/api/contracts/{acct.number}/state"
    dave = api_token(money_settings.database_url, "finance", name="dave")
    ended = httpx.post(url, json={"state": "repossessed", "note": "stopped paying in March"}, headers=dave)
    assert ended.status_code == 200 and ended.json()["from"] == "active"
    assert httpx.post(url, json={"state": "written_off"}, headers=dave).status_code == 409
    assert httpx.post(url, json={"state": "active"}, headers=dave).status_code == 422
    trail = conn.execute("select actor, action, before, after from audit_log where entity = 'contract'").fetchall()
    assert trail == [("token:dave", "contract-repossessed", {"state": "active"},
                      {"state": "repossessed", "note": "stopped paying in March"})]  # fmt: skip
    late = httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "350"))
    assert late.json()["ResultCode"] == 0
    assert count(conn, "select count(*) from tokens") == 1  # the deposit's only
    assert count(conn, "select paid_total from contracts where id = %s", acct.contract_id) == 50_000
    assert count(conn, "select count(*) from unmatched_payments where kind = 'ended-contract' and state = 'open'") == 1
