"""The signed generic webhook: the provider's HMAC and currency are checked before any money moves."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from tests.support import count
from tests.support.money import MONEY_NOW, WEBHOOK_SECRET, Device, make_accounts, make_products, webhook

pytestmark = pytest.mark.clock(MONEY_NOW)


def test_signed_webhook_wrong_currency_and_bad_signature(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    asset, _ = make_products(conn)
    acct = make_accounts(conn, money_settings, asset, 1, "WNG")[0]

    def send(payload: dict[str, object], secret: str = WEBHOOK_SECRET) -> httpx.Response:
        return webhook(server, payload, secret)

    good = {"transaction_id": "W-1", "account": acct.number, "amount": "2000.00", "currency": "KES",
            "paid_at": "2026-11-22T09:00:00+07:00"}  # fmt: skip
    forged = send(good | {"transaction_id": "W-0"}, secret="not-the-secret")
    assert forged.status_code == 400 and "X-Signature" in forged.json()["reason"]
    usd = send(good | {"transaction_id": "W-2", "currency": "USD", "amount": "20.00"})
    assert usd.status_code == 400 and "wrong currency USD" in usd.json()["reason"]
    assert count(conn, "select count(*) from tokens") == 0
    ok = send(good)
    assert ok.status_code == 200 and ok.json()["status"] == "credited" and len(ok.json()["tokens"]) == 1
    again = send(good)
    assert again.json() == ok.json() and again.headers["x-duplicate"] == "true"
    statuses = sorted(r[0] for r in conn.execute("select status from payment_inbox").fetchall())
    assert statuses == ["credited", "rejected", "rejected"]
    assert Device(acct).enter(ok.json()["tokens"][0])
