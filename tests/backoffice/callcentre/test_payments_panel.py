"""Issue 21: the unit page's payments panel shows every payment the ledger holds, whichever way it came in
(the deposit taken at signing, a backfilled history, an M-Pesa callback with its reference); never "No
payment received" for a contract that paid."""

from __future__ import annotations

import httpx
import psycopg
from fastapi.testclient import TestClient

from backoffice import clock
from backoffice.config import Settings
from backoffice.credit import service as credit
from paygo.web import create_app
from tests.support.money import confirmation, make_accounts, make_products
from tests.support.staff import api_token


def test_the_payments_panel_shows_every_payment_in_the_ledger(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    asset, _ = make_products(conn)  # 2,000 KES deposit, then 12 x 1,500 KES
    acct = make_accounts(conn, money_settings, asset, 1, "PAY")[0]
    today = clock.today()
    # 16,400 KES without a provider callback: the 2,000 deposit at signing and a history of two payments
    # recorded through the credit service (as `paygo sim backfill` and the demo do).
    for amount in (200_000, 1_000_000, 440_000):
        credit.apply_payment(conn, acct.contract_id, amount, today, money_settings.secret_key)
    conn.commit()
    paid = conn.execute(
        "select sum(amount) from ledger_entries where contract_id = %s and status = 'completed'", (acct.contract_id,)
    ).fetchone()
    assert paid == (1_640_000,)

    with TestClient(create_app(money_settings), headers=api_token(money_settings.database_url, "call_centre")) as c:
        page = c.get(f"/units/{acct.serial}").text
        assert "No payment received for this contract yet" not in page
        shown = c.get(f"/api/v1/units/{acct.serial}").json()["payments"]
        assert sorted(p["amount"] for p in shown) == [200_000, 440_000, 1_000_000]
        assert {p["type"] for p in shown} == {"deposit", "payment"} and all(p["in_ledger"] for p in shown)

        # Then one by M-Pesa, shown with its provider's reference.
        mpesa = confirmation(acct.number, "350.00", txn="PANEL00001")
        assert httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=mpesa).json()["ResultCode"] == 0
        shown = c.get(f"/api/v1/units/{acct.serial}").json()["payments"]
        by_ref = {p["provider_txn_id"]: p for p in shown}
        assert by_ref["PANEL00001"]["in_ledger"] and by_ref["PANEL00001"]["amount"] == 35_000
        assert by_ref["PANEL00001"]["status"] == "credited" and by_ref["PANEL00001"]["provider"] == "mpesa"
        assert sum(p["amount"] for p in shown if p["in_ledger"]) == 1_675_000 and len(shown) == 4  # each once
        page = c.get(f"/units/{acct.serial}").text
        assert "PANEL00001" in page
        assert page.count("<td>deposit</td>") == 1 and page.count("<td>payment</td>") == 3
