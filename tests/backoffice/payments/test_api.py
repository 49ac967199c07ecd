"""Finance's side of the payments API and page: manual entry, and unmatched money assigned or refunded."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from tests.support import count
from tests.support.money import MONEY_NOW, confirmation, make_accounts, make_products
from tests.support.staff import api_token

pytestmark = pytest.mark.clock(MONEY_NOW)


def test_manual_entry_and_finance_resolving_unmatched_money(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "FIN")[0]
    manual = {"reference": "BANK-77", "account": acct.number, "amount": "500.00", "currency": "KES",
              "paid_at": "2026-11-20T12:00:00+03:00"}  # fmt: skip
    alice = api_token(money_settings.database_url, "finance", name="alice")
    bob = api_token(money_settings.database_url, "finance", name="bob")
    first = httpx.post(f"{server}/api/payments/manual", json=manual, headers=alice)
    assert first.status_code == 200 and first.json()["status"] == "credited"
    assert (
        httpx.post(f"{server}/api/payments/manual", json=manual, headers=alice).json() == first.json()
    )  # entered twice: once
    bad = httpx.post(
        f"{server}/api/payments/manual", json=manual | {"reference": "BANK-78", "amount": "1.234"}, headers=alice
    )
    assert bad.status_code == 400 and "more decimals" in bad.json()["reason"]

    # 70 KES for an account nobody has: finance assigns it to the right contract.
    typo = acct.number[:-1] + str((int(acct.number[-1]) + 3) % 10)
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(typo, "70", txn="LOST1"))
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(typo, "35", txn="LOST2"))
    queue = httpx.get(f"{server}/api/unmatched", headers=bob).json()
    assert [u["provider_txn_id"] for u in queue] == ["LOST1", "LOST2"]
    assigned = httpx.post(f"{server}/api/unmatched/{queue[0]['id']}/assign", json={"account": acct.number}, headers=bob)
    assert assigned.status_code == 200 and assigned.json()["days_added"] == 2
    again = httpx.post(f"{server}/api/unmatched/{queue[0]['id']}/assign", json={"account": acct.number}, headers=bob)
    assert again.status_code == 409 and "already assigned" in again.json()["detail"]
    refunded = httpx.post(f"{server}/api/unmatched/{queue[1]['id']}/refund", json={"note": "wrong number"}, headers=bob)
    assert refunded.status_code == 200 and httpx.get(f"{server}/api/unmatched", headers=bob).json() == []
    trail = conn.execute("select actor, action from audit_log where entity = 'payment' order by id").fetchall()
    assert ("token:bob", "assign") in trail and ("token:bob", "refund") in trail
    assert ("token:alice", "manual-entry") in trail
    assert count(conn, "select days_granted from contracts where id = %s", acct.contract_id) == 7 + 2
    page = httpx.get(f"{server}/payments", headers=bob)
    assert page.status_code == 200 and "BANK-77" in page.text and "LOST2" in page.text
    assert "Nothing waiting" in page.text  # the queue is empty again
