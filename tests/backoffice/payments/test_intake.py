"""Payments in through a running HTTP server (M-Pesa C2B, the signed webhook's reversals): every
callback kept raw, credited exactly once, bad input kept with its reason."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from backoffice import clock
from backoffice.config import Settings
from tests.support import count
from tests.support.money import MONEY_NOW, Device, confirmation, make_accounts, make_products, webhook
from tests.support.staff import api_token

pytestmark = pytest.mark.clock(MONEY_NOW)


def test_same_confirmation_ten_times_concurrently_credits_once(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    asset, _ = make_products(conn)
    acct = make_accounts(conn, money_settings, asset, 1, "SHS")[0]
    body = confirmation(acct.number, "3500.00", txn="RKTQDM7W6S")  # deposit + one instalment
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=body),
                                range(10)))  # fmt: skip
    assert {r.status_code for r in replies} == {200}
    assert len({r.text for r in replies}) == 1
    assert sum(r.headers.get("x-duplicate") == "true" for r in replies) == 9
    assert count(conn, "select count(*) from payment_inbox") == 1
    assert count(conn, "select count(*) from tokens") == 1
    assert count(conn, "select count(*) from ledger_entries where status = 'completed'") == 2  # deposit + payment
    assert count(conn, "select paid_total from contracts where id = %s", acct.contract_id) == 350_000
    token = conn.execute("select token from tokens").fetchone()
    assert token and Device(acct).enter(token[0])


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (b"{not json", "C2B00016", "malformed JSON"),
        (json.dumps(confirmation("VALID", "0")).encode(), "C2B00013", "must be positive"),
        (json.dumps(confirmation("VALID", "-50")).encode(), "C2B00013", "must be positive"),
        (json.dumps(confirmation("VALID", "10.001")).encode(), "C2B00013", "more decimals than KES"),
        (json.dumps(confirmation("VALID", "10", shortcode="999999")).encode(), "C2B00015", "not ours"),
    ],
    ids=["malformed-json", "zero", "negative", "three-decimals", "unknown-shortcode"],
)
def test_bad_mpesa_input_is_kept_with_its_reason_and_credits_nothing(
    money_settings: Settings, conn: psycopg.Connection, server: str, body: bytes, code: str, reason: str
) -> None:
    asset, _ = make_products(conn)
    acct = make_accounts(conn, money_settings, asset, 1, "BAD")[0]
    body = body.replace(b"VALID", acct.number.encode())
    reply = httpx.post(f"{server}/payments/mpesa/c2b/confirmation", content=body,
                       headers={"content-type": "application/json"})  # fmt: skip
    assert reply.json()["ResultCode"] == code and reason in reply.json()["ResultDesc"]
    kept = conn.execute("select status, reason, raw from payment_inbox").fetchall()
    assert len(kept) == 1 and kept[0][0] == "rejected" and reason in kept[0][1] and bytes(kept[0][2]) == body
    assert count(conn, "select count(*) from tokens") == 0
    assert count(conn, "select count(*) from ledger_entries where status = 'completed'") == 0


def test_validation_and_unmatched_account(money_settings: Settings, conn: psycopg.Connection, server: str) -> None:
    asset, _ = make_products(conn)
    acct = make_accounts(conn, money_settings, asset, 1, "VAL")[0]
    url = f"{server}/payments/mpesa/c2b/validation"
    accepted = httpx.post(url, json=confirmation(acct.number, "100")).json()
    assert accepted == {"ResultCode": "0", "ResultDesc": "Accepted"}
    typo = acct.number[:-1] + str((int(acct.number[-1]) + 1) % 10)
    assert httpx.post(url, json=confirmation(typo, "100")).json()["ResultCode"] == "C2B00012"
    assert count(conn, "select count(*) from payment_inbox") == 0  # validation moves no money

    # Money that arrives for an account nobody has goes to finance's queue, with the reason.
    reply = httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(typo, "100"))
    assert reply.json()["ResultCode"] == 0
    row = conn.execute(
        "select i.status, i.reason, u.state from payment_inbox i join unmatched_payments u on u.inbox_id = i.id"
    ).fetchone()
    assert row is not None and row[0] == "unmatched" and "check digit" in row[1] and row[2] == "open"
    finance = api_token(money_settings.database_url, "finance")
    listed = httpx.get(f"{server}/api/payments", params={"status": "unmatched"}, headers=finance).json()
    assert [p["account"] for p in listed] == [typo]


def test_reversal_takes_back_credit_and_the_next_token_is_smaller(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "REV")[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "500", txn="DEP1"))
    paid = {"transaction_id": "PAY1", "amount": "350", "account": acct.number, "currency": "KES",
            "paid_at": clock.utc_now().isoformat()}  # fmt: skip
    assert webhook(server, paid).json()["status"] == "credited"  # through the provider's signed webhook
    # Only the provider that made a payment can reverse it (issue 13: another's signature reversed it).
    reversal = {"transaction_id": "REV-PAY1", "reverses": "PAY1", "amount": "350", "account": acct.number,
                "currency": "KES", "paid_at": clock.utc_now().isoformat()}  # fmt: skip
    assert webhook(server, reversal).json()["status"] == "reversed"
    assert webhook(server, reversal | {"transaction_id": "REV-AGAIN"}).status_code == 400  # already reversed
    assert conn.execute("select status from payment_inbox where provider_txn_id = 'PAY1'").fetchone() == ("reversed",)
    assert webhook(server, reversal | {"transaction_id": "REV-REV", "reverses": "REV-PAY1"}).status_code == 400
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "525", txn="PAY2"))
    days = [d for (d,) in conn.execute("select value_days from tokens order by count").fetchall()]
    assert days == [7, 10, 5]  # 525 KES would buy 15 days; 10 of them were already issued for the reversed 350
    ledger = conn.execute(
        "select sum(amount) from ledger_entries where contract_id = %s and status = 'completed'", (acct.contract_id,)
    ).fetchone()
    assert ledger == (50_000 + 35_000 - 35_000 + 52_500,)
