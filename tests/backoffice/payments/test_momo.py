"""MTN MoMo: the platform asks a wallet for a payment; MTN's callback (or the poll of its status API)
settles it, and nothing but our own requests, for the amount we asked and confirmed by MTN, is
credited."""

from __future__ import annotations

from datetime import timedelta

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from backoffice.payments.momo import MomoClient, poll_pending
from backoffice.registry import repository as registry
from paygo.web import create_app
from tests.support import count, serve
from tests.support.momo import momo_standin
from tests.support.money import MONEY_NOW, Account, make_accounts
from tests.support.staff import api_token

pytestmark = pytest.mark.clock(MONEY_NOW)


def _ugx_account(conn: psycopg.Connection, settings: Settings, prefix: str) -> Account:
    product = registry.insert_product(conn, code=f"UG-{prefix}", name="Lamp UG", business_model="flexible",
                                      currency="UGX", hardware_cost=100_000, price_per_day=1_000, deposit_amount=0,
                                      deposit_days=0)  # fmt: skip
    return make_accounts(conn, settings, product, 1, prefix)[0]


def _ask(server: str, headers: dict[str, str], account: str, amount: str) -> str:
    asked = {"account": account, "amount": amount, "currency": "UGX", "msisdn": "256700000001"}
    reply = httpx.post(f"{server}/api/payments/momo/requests", headers=headers, json=asked)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["reference_id"])


def test_momo_requested_then_settled_by_callback_or_by_poll(money_settings: Settings, conn: psycopg.Connection) -> None:
    acct = _ugx_account(conn, money_settings, "UG")
    with momo_standin(money_settings) as (settings, wallets), serve(create_app(settings)) as server:
        agent = api_token(settings.database_url, "call_centre")
        first, second = _ask(server, agent, acct.number, "5000"), _ask(server, agent, acct.number, "5000")
        assert (
            wallets.requests[first]["callback"]
            == f"http://127.0.0.1:{settings.api_port}/payments/momo/callback/{first}"
        )
        assert count(conn, "select count(*) from payment_inbox where status = 'pending'") == 2
        # The first: the customer approves, MTN calls back, MTN's status API confirms, light is credited.
        wallets.requests[first]["callback"] = f"{server}/payments/momo/callback/{first}"
        done = wallets.approve(first)
        assert done is not None and done.json()["status"] == "credited"
        again = httpx.post(f"{server}/payments/momo/callback/{first}", json=wallets.results[first])
        assert again.headers.get("x-duplicate") == "true"
        # The second: the callback never arrives (MoMo does not retry it); the poll finds it succeeded.
        wallets.approve(second, callback=False)
        conn.commit()
        conn.autocommit = True
        report = poll_pending(conn, MomoClient(settings), settings, older_than=timedelta(0))
        assert (report.asked, report.settled, report.still_pending, report.errors) == (1, 1, 0, 0)
        days = [d for (d,) in conn.execute("select value_days from tokens order by count").fetchall()]
        assert days == [5, 5]
        trail = conn.execute("select actor, action from audit_log where action = 'momo-requested'").fetchall()
        assert trail == [("token:test-call_centre", "momo-requested")] * 2
