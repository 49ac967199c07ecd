"""Credit and OpenPAYGO tokens: row-locked token counts under concurrent payments, DISABLE_PAYG at
payoff, and long credit split into several tokens, all checked with the official decoder."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from backoffice.credit.service import apply_payment
from tests.support.money import MONEY_NOW, Account, Device, confirmation, make_accounts, make_products

pytestmark = pytest.mark.clock(MONEY_NOW)


def test_two_hundred_units_paying_at_once(money_settings: Settings, conn: psycopg.Connection, server: str) -> None:
    _, flexible = make_products(conn)
    accounts = make_accounts(conn, money_settings, flexible, 200, "BULK")

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
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "ONE")[0]
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


def test_payoff_issues_disable_payg(money_settings: Settings, conn: psycopg.Connection, server: str) -> None:
    asset, _ = make_products(conn)
    acct = make_accounts(conn, money_settings, asset, 1, "OWN")[0]
    total = "20000.00"  # 2,000 deposit + 12 x 1,500
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, total))
    kinds = conn.execute("select token_type from tokens").fetchall()
    assert kinds == [("disable_payg",)]
    assert conn.execute("select state from contracts where id = %s", (acct.contract_id,)).fetchone() == ("paid_off",)
    device = Device(acct)
    assert device.enter(conn.execute("select token from tokens").fetchone()[0]) and device.unlocked  # type: ignore[index]


def test_more_than_995_days_become_several_tokens(money_settings: Settings, conn: psycopg.Connection) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "BIG")[0]
    conn.execute("update products set price_to_own = null")  # fee-for-service: no payoff to stop at
    credited = apply_payment(
        conn, acct.contract_id, 50_000 + 3_500 * 1_200, date(2026, 11, 2), money_settings.secret_key
    )
    conn.commit()
    assert [t["days"] for t in credited.tokens] == [995, 212]  # 7 deposit days + 1,200 bought
    device = Device(acct)
    assert all(device.enter(str(t["token"])) for t in credited.tokens) and device.days == 1_207
