"""The money loop over real servers: M-Pesa / MoMo / signed webhook intake through a running HTTP
server, crediting exactly once, OpenPAYGO tokens with row-locked counts, SMS and MQTT delivery."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from openpaygo import TokenType, decode_token
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from backoffice import crypto
from backoffice.config import Settings
from backoffice.contracts.service import sign_contract
from backoffice.credit.service import apply_payment
from backoffice.delivery.dispatcher import DevSmsGateway, dispatch_once, handle_ack
from backoffice.delivery.main import MqttLink
from backoffice.ledger.export import export
from backoffice.payments.providers import sign
from backoffice.registry import repository as registry
from backoffice.registry.schemas import NewContract
from backoffice.registry.service import register_unit
from paygo.web import create_app
from protocol import topic
from tests.helpers import serve, wait_for

SHORTCODE = "600638"
WEBHOOK_SECRET = "wing-test-secret"


@dataclass
class Account:
    number: str
    contract_id: int
    unit_id: int
    serial: str
    key: str
    starting_code: int
    phone: str


def _products(conn: psycopg.Connection) -> tuple[int, int]:
    asset = registry.insert_product(
        conn, code="SHS-A", name="SHS asset finance", business_model="asset_finance", currency="KES",
        hardware_cost=3_000_000, deposit_amount=200_000, instalment_amount=150_000, instalment_count=12,
        instalment_period_days=30, lighting_global_certified=True,
    )  # fmt: skip
    flexible = registry.insert_product(
        conn, code="LAMP", name="Lamp flexible", business_model="flexible", currency="KES", hardware_cost=450_000,
        deposit_amount=50_000, price_per_day=3_500, price_to_own=900_000, contract_days=365, deposit_days=7,
    )  # fmt: skip
    return asset, flexible


def _accounts(conn: psycopg.Connection, settings: Settings, product_id: int, n: int, prefix: str) -> list[Account]:
    out = []
    for i in range(n):
        phone = f"2547{random.randrange(10_000_000, 99_999_999)}"
        customer = registry.insert_customer(conn, f"Customer {prefix}{i}", phone, "Kisumu", "Kisumu", None, None)
        serial = f"{prefix}{i:05d}"
        unit = register_unit(conn, settings.secret_key, serial, product_id)
        contract = sign_contract(conn, NewContract(customer, unit, product_id, date(2026, 11, 1)))
        row = conn.execute(
            "select u.openpaygo_key_enc, u.starting_code, c.account_number from units u join contracts c"
            " on c.unit_id = u.id where u.id = %s",
            (unit,),
        ).fetchone()
        assert row is not None
        key = crypto.decrypt(settings.secret_key, row[0])
        out.append(Account(row[2], contract, unit, serial, key, row[1], phone))
    conn.commit()
    return out


@pytest.fixture
def money_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"mpesa_shortcodes": SHORTCODE, "webhook_secrets": {"wing": WEBHOOK_SECRET}})


@pytest.fixture
def server(money_settings: Settings) -> Iterator[str]:
    """The back-office app served over real HTTP by uvicorn, in a thread of this test process."""
    with serve(create_app(money_settings)) as url:
        yield url


def confirmation(account: str, amount: str, txn: str | None = None, shortcode: str = SHORTCODE) -> dict[str, str]:
    return {
        "TransactionType": "Pay Bill", "TransID": txn or uuid.uuid4().hex[:10].upper(),
        "TransTime": "20261122063845", "TransAmount": amount, "BusinessShortCode": shortcode,
        "BillRefNumber": account, "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 126", "FirstName": "NICHOLAS", "MiddleName": "", "LastName": "",
    }  # fmt: skip


def _webhook(server: str, payload: dict[str, object], secret: str = WEBHOOK_SECRET) -> httpx.Response:
    """A payment event on the signed generic webhook of provider "wing"."""
    raw = json.dumps(payload).encode()
    headers = {"X-Signature": sign(secret, raw), "content-type": "application/json"}
    return httpx.post(f"{server}/payments/webhook/wing", content=raw, headers=headers)


class Device:
    """The device side of OpenPAYGO: the official decoder with its count and used counts."""

    def __init__(self, acct: Account, count: int = 1) -> None:
        self.acct, self.count, self.used = acct, count, [count]
        self.days = 0.0
        self.unlocked = False

    def enter(self, token: str) -> bool:
        value, kind, count, used = decode_token(
            token=token, secret_key=self.acct.key, count=self.count, used_counts=self.used,
            starting_code=self.acct.starting_code,
        )  # fmt: skip
        if kind == TokenType.ADD_TIME and value is not None:
            self.days += value
        elif kind == TokenType.DISABLE_PAYG:
            self.unlocked = True
        else:
            return False
        self.count = max(self.count, count)
        self.used = used
        return True


def _counts(conn: psycopg.Connection, sql: str, *args: object) -> int:
    row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row else 0


def test_mpesa_confirmation_to_unlocked_device_over_mqtt_and_sms(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    settings = money_settings
    _, flexible = _products(conn)
    acct = _accounts(conn, settings, flexible, 1, "LMP")[0]

    # 500 KES deposit (7 days) + 350 KES at 35 KES/day (10 days) + 20 KES kept for later.
    reply = httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "870.00"))
    assert reply.json() == {"ResultCode": 0, "ResultDesc": "Success"}

    # The unit's side: subscribed to its command topic on the real broker, acknowledging.
    received: list[dict[str, object]] = []
    device_client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{acct.serial}",
                                protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        command = json.loads(msg.payload)
        received.append(command)
        ack = json.dumps({"outbox_id": command["outbox_id"]})
        client.publish(topic(acct.serial, "cmd/ack", settings.mqtt_topic_root), ack, qos=1)

    device_client.on_message = on_message
    device_client.connect("127.0.0.1", settings.mqtt_port)
    device_client.subscribe(topic(acct.serial, "cmd", settings.mqtt_topic_root), qos=1)
    device_client.loop_start()
    link = MqttLink(settings, f"delivery-test-{uuid.uuid4().hex[:6]}")
    link.start()
    try:
        time.sleep(0.5)  # both subscriptions are in place
        conn.autocommit = True
        with conn.transaction():
            assert dispatch_once(conn, DevSmsGateway(), link.publish) == 2  # one SMS, one command
        wait_for(lambda: len(received) == 1 and not link.acks.empty(), timeout=10, what="the command and its ack")
        serial, payload = link.acks.get()
        with conn.transaction():
            assert handle_ack(conn, serial, payload)
    finally:
        link.stop()
        device_client.loop_stop()
        device_client.disconnect()

    device = Device(acct)
    assert device.enter(str(received[0]["token"]))
    assert device.days == 17  # exactly what was paid for
    sms = conn.execute("select to_number, body from sms_messages").fetchall()
    token = str(received[0]["token"])
    assert sms == [(acct.phone, sms[0][1])] and f"{token[:3]} {token[3:6]} {token[6:]}" in sms[0][1]
    states = dict(conn.execute("select channel, state from outbox").fetchall())
    assert states == {"sms": "acked", "mqtt": "acked"}
    paid, granted = conn.execute(
        "select paid_total, days_granted from contracts where id = %s", (acct.contract_id,)
    ).fetchone() or (0, 0)
    assert (paid, granted) == (87_000, 17)  # the 20 KES remainder is kept in the balance

    # The next 15 KES completes a day with the kept 20 KES: one more day, nothing lost.
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "15"))
    tokens = conn.execute("select token, value_days from tokens order by count").fetchall()
    assert [d for _, d in tokens] == [17, 1]
    assert device.enter(tokens[1][0]) and device.days == 18
    ledger = conn.execute(
        "select type, amount from ledger_entries where contract_id = %s and status = 'completed' order by id",
        (acct.contract_id,),
    ).fetchall()
    assert ledger == [("deposit", 50_000), ("payment", 37_000), ("payment", 1_500)]


def test_same_confirmation_ten_times_concurrently_credits_once(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    asset, _ = _products(conn)
    acct = _accounts(conn, money_settings, asset, 1, "SHS")[0]
    body = confirmation(acct.number, "3500.00", txn="RKTQDM7W6S")  # deposit + one instalment
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=body),
                                range(10)))  # fmt: skip
    assert {r.status_code for r in replies} == {200}
    assert len({r.text for r in replies}) == 1
    assert sum(r.headers.get("x-duplicate") == "true" for r in replies) == 9
    assert _counts(conn, "select count(*) from payment_inbox") == 1
    assert _counts(conn, "select count(*) from tokens") == 1
    assert _counts(conn, "select count(*) from ledger_entries where status = 'completed'") == 2  # deposit + payment
    assert _counts(conn, "select paid_total from contracts where id = %s", acct.contract_id) == 350_000
    token = conn.execute("select token from tokens").fetchone()
    assert token and Device(acct).enter(token[0])


def test_two_hundred_units_paying_at_once(money_settings: Settings, conn: psycopg.Connection, server: str) -> None:
    _, flexible = _products(conn)
    accounts = _accounts(conn, money_settings, flexible, 200, "BULK")

    def pay(acct: Account) -> httpx.Response:
        return httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "605"),
                          timeout=60)  # fmt: skip

    with ThreadPoolExecutor(40) as pool:
        replies = list(pool.map(pay, accounts))
    assert all(r.json()["ResultCode"] == 0 for r in replies)
    rows = conn.execute("select unit_id, token, count from tokens").fetchall()
    assert len(rows) == 200 and len({u for u, _, _ in rows}) == 200
    by_unit = {u: (t, c) for u, t, c in rows}
    for acct in accounts:
        token, count = by_unit[acct.unit_id]
        device = Device(acct)
        assert device.enter(token) and device.days == 7 + 3  # deposit days + 105 KES at 35/day
        assert device.count == count


def test_twenty_payments_for_one_unit_at_once(money_settings: Settings, conn: psycopg.Connection, server: str) -> None:
    _, flexible = _products(conn)
    acct = _accounts(conn, money_settings, flexible, 1, "ONE")[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "500"))  # deposit

    def pay(i: int) -> httpx.Response:
        return httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "70"))

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(pay, range(20)))
    tokens = conn.execute("select token, count, value_days from tokens order by id").fetchall()
    counts = [c for _, c, _ in tokens]
    assert len(tokens) == 21 and counts == sorted(counts) and len(set(counts)) == 21  # issue order = count order
    assert sum(d for _, _, d in tokens) == 7 + 20 * 2

    in_order = Device(acct)
    assert all(in_order.enter(t) for t, _, _ in tokens) and in_order.days == 47
    # Older ADD_TIME tokens may be entered out of order within the device's window of 16 counts.
    shuffled = Device(acct)
    rng = random.Random(3)
    for start in range(0, len(tokens), 8):
        block = tokens[start : start + 8]
        rng.shuffle(block)
        assert all(shuffled.enter(t) for t, _, _ in block)
    assert shuffled.days == 47


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
    asset, _ = _products(conn)
    acct = _accounts(conn, money_settings, asset, 1, "BAD")[0]
    body = body.replace(b"VALID", acct.number.encode())
    reply = httpx.post(f"{server}/payments/mpesa/c2b/confirmation", content=body,
                       headers={"content-type": "application/json"})  # fmt: skip
    assert reply.json()["ResultCode"] == code and reason in reply.json()["ResultDesc"]
    kept = conn.execute("select status, reason, raw from payment_inbox").fetchall()
    assert len(kept) == 1 and kept[0][0] == "rejected" and reason in kept[0][1] and bytes(kept[0][2]) == body
    assert _counts(conn, "select count(*) from tokens") == 0
    assert _counts(conn, "select count(*) from ledger_entries where status = 'completed'") == 0


def test_signed_webhook_wrong_currency_and_bad_signature(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    asset, _ = _products(conn)
    acct = _accounts(conn, money_settings, asset, 1, "WNG")[0]

    def send(payload: dict[str, object], secret: str = WEBHOOK_SECRET) -> httpx.Response:
        return _webhook(server, payload, secret)

    good = {"transaction_id": "W-1", "account": acct.number, "amount": "2000.00", "currency": "KES",
            "paid_at": "2026-11-22T09:00:00+07:00"}  # fmt: skip
    forged = send(good | {"transaction_id": "W-0"}, secret="not-the-secret")
    assert forged.status_code == 400 and "X-Signature" in forged.json()["reason"]
    usd = send(good | {"transaction_id": "W-2", "currency": "USD", "amount": "20.00"})
    assert usd.status_code == 400 and "wrong currency USD" in usd.json()["reason"]
    assert _counts(conn, "select count(*) from tokens") == 0
    ok = send(good)
    assert ok.status_code == 200 and ok.json()["status"] == "credited" and len(ok.json()["tokens"]) == 1
    again = send(good)
    assert again.json() == ok.json() and again.headers["x-duplicate"] == "true"
    statuses = sorted(r[0] for r in conn.execute("select status from payment_inbox").fetchall())
    assert statuses == ["credited", "rejected", "rejected"]
    assert Device(acct).enter(ok.json()["tokens"][0])


def test_validation_and_unmatched_account(money_settings: Settings, conn: psycopg.Connection, server: str) -> None:
    asset, _ = _products(conn)
    acct = _accounts(conn, money_settings, asset, 1, "VAL")[0]
    url = f"{server}/payments/mpesa/c2b/validation"
    accepted = httpx.post(url, json=confirmation(acct.number, "100")).json()
    assert accepted == {"ResultCode": "0", "ResultDesc": "Accepted"}
    typo = acct.number[:-1] + str((int(acct.number[-1]) + 1) % 10)
    assert httpx.post(url, json=confirmation(typo, "100")).json()["ResultCode"] == "C2B00012"
    assert _counts(conn, "select count(*) from payment_inbox") == 0  # validation moves no money

    # Money that arrives for an account nobody has goes to finance's queue, with the reason.
    reply = httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(typo, "100"))
    assert reply.json()["ResultCode"] == 0
    row = conn.execute(
        "select i.status, i.reason, u.state from payment_inbox i join unmatched_payments u on u.inbox_id = i.id"
    ).fetchone()
    assert row is not None and row[0] == "unmatched" and "check digit" in row[1] and row[2] == "open"
    listed = httpx.get(f"{server}/api/payments", params={"status": "unmatched"}).json()
    assert [p["account"] for p in listed] == [typo]


def test_payoff_issues_disable_payg(money_settings: Settings, conn: psycopg.Connection, server: str) -> None:
    asset, _ = _products(conn)
    acct = _accounts(conn, money_settings, asset, 1, "OWN")[0]
    total = "20000.00"  # 2,000 deposit + 12 x 1,500
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, total))
    kinds = conn.execute("select token_type from tokens").fetchall()
    assert kinds == [("disable_payg",)]
    assert conn.execute("select state from contracts where id = %s", (acct.contract_id,)).fetchone() == ("paid_off",)
    device = Device(acct)
    assert device.enter(conn.execute("select token from tokens").fetchone()[0]) and device.unlocked  # type: ignore[index]


def test_reversal_takes_back_credit_and_the_next_token_is_smaller(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = _products(conn)
    acct = _accounts(conn, money_settings, flexible, 1, "REV")[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "500", txn="DEP1"))
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "350", txn="PAY1"))
    reversal = {"transaction_id": "REV-PAY1", "reverses": "PAY1", "reverses_provider": "mpesa", "amount": "350",
                "account": acct.number, "currency": "KES", "paid_at": "2026-11-22T10:00:00+03:00"}  # fmt: skip
    assert _webhook(server, reversal).json()["status"] == "credited"
    assert _webhook(server, reversal | {"transaction_id": "REV-AGAIN"}).status_code == 400  # already reversed
    assert conn.execute("select status from payment_inbox where provider_txn_id = 'PAY1'").fetchone() == ("reversed",)
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "525", txn="PAY2"))
    days = [d for (d,) in conn.execute("select value_days from tokens order by count").fetchall()]
    assert days == [7, 10, 5]  # 525 KES would buy 15 days; 10 of them were already issued for the reversed 350
    ledger = conn.execute(
        "select sum(amount) from ledger_entries where contract_id = %s and status = 'completed'", (acct.contract_id,)
    ).fetchone()
    assert ledger == (50_000 + 35_000 - 35_000 + 52_500,)


def test_provider_simulator_with_faults_keeps_the_books_straight(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    import asyncio

    from devtools.mobile_money import Faults, Payer, Simulator

    _, flexible = _products(conn)
    accounts = _accounts(conn, money_settings, flexible, 10, "SIM")
    payers = [Payer(a.number, "605.00") for a in accounts]
    faults = Faults(duplicate=0.3, typo=0.2, late=0.2, reversal=0.2, late_seconds=0.5)
    sim = Simulator(server, payers, SHORTCODE, faults, "wing", WEBHOOK_SECRET, seed=5)
    result = asyncio.run(sim.run(rate=50, count=40))
    assert not result.errors and result.sent == 40
    assert result.by_kind.get("duplicate") and result.by_kind.get("typo") and result.by_kind.get("reversed")
    status = dict(conn.execute("select status, count(*) from payment_inbox where provider = 'mpesa' group by 1"))
    assert sum(status.values()) == 40  # one inbox row per payment, whatever the duplicates
    assert status.get("unmatched", 0) + _counts(
        conn, "select count(*) from payment_inbox i join unmatched_payments u on u.inbox_id = i.id "
        "where i.status = 'reversed'")  == result.by_kind["typo"]  # fmt: skip
    assert status.get("reversed", 0) == result.by_kind["reversed"]
    for acct in accounts:  # credit and ledger agree, unit by unit
        paid = _counts(conn, "select paid_total from contracts where id = %s", acct.contract_id)
        booked = _counts(conn, "select coalesce(sum(amount), 0) from ledger_entries where contract_id = %s "
                         "and status = 'completed'", acct.contract_id)  # fmt: skip
        assert paid == booked


def test_manual_entry_and_finance_resolving_unmatched_money(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = _products(conn)
    acct = _accounts(conn, money_settings, flexible, 1, "FIN")[0]
    manual = {"reference": "BANK-77", "account": acct.number, "amount": "500.00", "currency": "KES",
              "paid_at": "2026-11-20T12:00:00+03:00", "entered_by": "alice"}  # fmt: skip
    first = httpx.post(f"{server}/api/payments/manual", json=manual)
    assert first.status_code == 200 and first.json()["status"] == "credited"
    assert httpx.post(f"{server}/api/payments/manual", json=manual).json() == first.json()  # entered twice: once
    bad = httpx.post(f"{server}/api/payments/manual", json=manual | {"reference": "BANK-78", "amount": "1.234"})
    assert bad.status_code == 400 and "more decimals" in bad.json()["reason"]

    # 70 KES for an account nobody has: finance assigns it to the right contract.
    typo = acct.number[:-1] + str((int(acct.number[-1]) + 3) % 10)
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(typo, "70", txn="LOST1"))
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(typo, "35", txn="LOST2"))
    queue = httpx.get(f"{server}/api/unmatched").json()
    assert [u["provider_txn_id"] for u in queue] == ["LOST1", "LOST2"]
    assigned = httpx.post(
        f"{server}/api/unmatched/{queue[0]['id']}/assign", json={"actor": "bob", "account": acct.number}
    )
    assert assigned.status_code == 200 and assigned.json()["days_added"] == 2
    again = httpx.post(f"{server}/api/unmatched/{queue[0]['id']}/assign", json={"actor": "bob", "account": acct.number})
    assert again.status_code == 409 and "already assigned" in again.json()["detail"]
    refunded = httpx.post(
        f"{server}/api/unmatched/{queue[1]['id']}/refund", json={"actor": "bob", "note": "wrong number"}
    )
    assert refunded.status_code == 200 and httpx.get(f"{server}/api/unmatched").json() == []
    trail = conn.execute("select actor, action from payment_audit order by id").fetchall()
    assert ("bob", "assign") in trail and ("bob", "refund") in trail and ("alice", "manual-entry") in trail
    assert _counts(conn, "select days_granted from contracts where id = %s", acct.contract_id) == 7 + 2
    page = httpx.get(f"{server}/payments")
    assert page.status_code == 200 and "BANK-77" in page.text and "LOST2" in page.text
    assert "Nothing waiting" in page.text  # the queue is empty again


def test_statement_reconciliation(
    money_settings: Settings, conn: psycopg.Connection, server: str, tmp_path: Path
) -> None:
    _, flexible = _products(conn)
    a, b = _accounts(conn, money_settings, flexible, 2, "REC")
    for txn, acct, amount in (("T1", a, "500"), ("T2", b, "500"), ("T3", a, "70")):
        httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, amount, txn=txn))
    statement = tmp_path / "mpesa.csv"
    statement.write_text(
        "Transaction_ID,Paid_At,Account,Amount,Currency\n"
        f"T1,2026-11-22T06:38:45,{a.number},500.00,KES\n"  # matches
        f"T2,2026-11-22T06:38:45,{b.number},550.00,KES\n"  # a different amount
        f"T4,2026-11-22T07:00:00,{b.number},105.00,KES\n"  # never arrived by callback
        "T5,yesterday,12345678,10,KES\n"  # a bad line
    )  # T3 is not on the statement
    env = {"PAYGO_DATABASE_URL": money_settings.database_url, "PAYGO_ENVIRONMENT": "test"}
    done = subprocess.run([sys.executable, "-m", "paygo.cli", "payments", "import-statement", str(statement),
                           "--provider", "mpesa", "--actor", "carol"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr  # differences found
    out = done.stdout
    assert "4 statement rows: 1 matched, 1 created" in out
    assert "T4: credited" in out
    assert "T2: amount 550.00 KES on the statement, 500.00 KES received" in out
    assert "T3: 70.00 KES" in out and "not on the statement" in out
    assert "line 5:" in out and "yesterday" in out
    assert _counts(conn, "select days_granted from contracts where id = %s", b.contract_id) == 7 + 3  # T4 credited


def test_momo_pending_then_settled_by_poll_or_late_callback(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    """MTN's API cannot be reached from here: a small stand-in serves its token and status endpoints."""
    from fastapi import FastAPI, Header, HTTPException

    from backoffice.payments.momo import MomoClient, poll_pending

    registry.insert_product(conn, code="UG-LAMP", name="Lamp UG", business_model="flexible", currency="UGX",
                            hardware_cost=100_000, price_per_day=1_000, deposit_amount=0, deposit_days=0)  # fmt: skip
    product = conn.execute("select id from products where code = 'UG-LAMP'").fetchone()[0]  # type: ignore[index]
    acct = _accounts(conn, money_settings, product, 1, "UG")[0]

    mtn = FastAPI()
    answers: dict[str, dict[str, object]] = {}

    @mtn.post("/collection/token/")
    def token(ocp_apim_subscription_key: str = Header()) -> dict[str, str]:
        return {"access_token": "t-" + ocp_apim_subscription_key, "token_type": "access_token"}

    @mtn.get("/collection/v1_0/requesttopay/{ref}")
    def status(ref: str, authorization: str = Header()) -> dict[str, object]:
        if authorization != "Bearer t-sub-key" or ref not in answers:
            raise HTTPException(404)
        return answers[ref]

    with serve(mtn, "the stand-in MoMo API") as mtn_url:
        settings = money_settings.model_copy(update={"momo_base_url": mtn_url, "momo_subscription_key": "sub-key"})
        body = {"amount": "5000", "currency": "UGX", "externalId": acct.number, "status": "PENDING",
                "payer": {"partyIdType": "MSISDN", "partyId": "256700000001"}}  # fmt: skip
        for ref in ("REF-A", "REF-B"):
            reply = httpx.post(f"{server}/payments/momo/callback/{ref}", json=body)
            assert reply.json()["status"] == "pending"
        assert _counts(conn, "select count(*) from tokens") == 0
        # REF-A: the poll finds it succeeded. REF-B: a late callback settles it.
        answers["REF-A"] = body | {"status": "SUCCESSFUL", "financialTransactionId": "777"}
        conn.commit()
        conn.autocommit = True
        report = poll_pending(conn, MomoClient(settings), settings, older_than=timedelta(0))
        assert (report.asked, report.settled, report.still_pending) == (2, 1, 0) and report.errors == 1  # B: 404
        late = httpx.post(f"{server}/payments/momo/callback/REF-B", json=body | {"status": "SUCCESSFUL"})
        assert late.json()["status"] == "credited"
        again = httpx.post(f"{server}/payments/momo/callback/REF-B", json=body | {"status": "SUCCESSFUL"})
        assert again.headers.get("x-duplicate") == "true"
        days = [d for (d,) in conn.execute("select value_days from tokens order by count").fetchall()]
        assert days == [5, 5]


def test_call_centre_resends_a_token_and_lists_a_contracts_tokens(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = _products(conn)
    acct = _accounts(conn, money_settings, flexible, 1, "RSN")[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "605"))
    tokens = httpx.get(f"{server}/api/contracts/{acct.number}/tokens").json()
    assert [(t["token_type"], t["value_days"]) for t in tokens] == [("add_time", 10)]
    conn.autocommit = True
    with conn.transaction():
        dispatch_once(conn, DevSmsGateway(), lambda serial, payload: None)
    resent = httpx.post(f"{server}/api/tokens/{tokens[0]['id']}/resend")
    assert resent.status_code == 200 and resent.json()["deliveries_queued"] == 2
    with conn.transaction():
        assert dispatch_once(conn, DevSmsGateway(), lambda serial, payload: None) == 2
    sms = httpx.get(f"{server}/api/sms", params={"to": acct.phone}).json()
    assert len(sms) == 2 and sms[0]["body"] == sms[1]["body"] and tokens[0]["token"][:3] in sms[0]["body"]
    assert httpx.post(f"{server}/api/tokens/999999/resend").status_code == 404
    assert httpx.get(f"{server}/api/contracts/00000000/tokens").status_code == 404


def test_ledger_export_as_of(money_settings: Settings, conn: psycopg.Connection, tmp_path: Path) -> None:
    asset, _ = _products(conn)
    acct = _accounts(conn, money_settings, asset, 1, "EXP")[0]
    apply_payment(conn, acct.contract_id, 200_000, date(2026, 11, 1), money_settings.secret_key)
    apply_payment(conn, acct.contract_id, 150_000, date(2026, 12, 1), money_settings.secret_key)
    conn.commit()
    ledger, products = export(conn, tmp_path, as_of=date(2026, 11, 15))
    rows = ledger.read_text().splitlines()
    assert rows[0] == "date,customer_id,receipt_id,amount,currency,status,type,product_type"
    completed = [r for r in rows if ",completed," in r]
    expected = [r for r in rows if ",expected," in r]
    assert completed == [f"2026-11-01,{r.split(',')[1]},{acct.number},2000.00,KES,completed,deposit,SHS-A"
                         for r in completed]  # fmt: skip
    assert len(expected) == 13  # the whole schedule: deposit + 12 instalments, whatever the as-of date
    assert "SHS-A,asset_finance,30000.00" in products.read_text()


def test_more_than_995_days_become_several_tokens(money_settings: Settings, conn: psycopg.Connection) -> None:
    _, flexible = _products(conn)
    acct = _accounts(conn, money_settings, flexible, 1, "BIG")[0]
    conn.execute("update products set price_to_own = null")  # fee-for-service: no payoff to stop at
    credited = apply_payment(
        conn, acct.contract_id, 50_000 + 3_500 * 1_200, date(2026, 11, 2), money_settings.secret_key
    )
    conn.commit()
    assert [t["days"] for t in credited.tokens] == [995, 212]  # 7 deposit days + 1,200 bought
    device = Device(acct)
    assert all(device.enter(str(t["token"])) for t in credited.tokens) and device.days == 1_207


def test_ended_contract_keeps_payments_but_buys_no_light(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = _products(conn)
    acct = _accounts(conn, money_settings, flexible, 1, "END")[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "500"))
    url = f"{server}/api/contracts/{acct.number}/state"
    ended = httpx.post(url, json={"state": "repossessed", "actor": "dave", "note": "stopped paying in March"})
    assert ended.status_code == 200 and ended.json()["from"] == "active"
    assert httpx.post(url, json={"state": "written_off", "actor": "dave"}).status_code == 409
    assert httpx.post(url, json={"state": "active", "actor": "dave"}).status_code == 422
    late = httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "350"))
    assert late.json()["ResultCode"] == 0
    assert _counts(conn, "select count(*) from tokens") == 1  # the deposit's only
    assert _counts(conn, "select paid_total from contracts where id = %s", acct.contract_id) == 85_000
