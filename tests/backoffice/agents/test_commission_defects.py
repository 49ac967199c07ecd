"""Commissions follow the money exactly (issue 21): a reversal takes back what its payment earned, a
payout and moving a sale to another agent cannot both pay one contract, and a claw-back reads the day the
contract really ended (returned sales included)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import psycopg
import pytest

from backoffice import clock
from backoffice.agents import repository, service
from backoffice.agents.schemas import Agent
from backoffice.config import Settings
from backoffice.contracts import service as contracts
from backoffice.db import share_clock
from backoffice.payments import service as payments
from backoffice.payments.providers import PaymentEvent
from backoffice.registry.schemas import NewContract
from backoffice.registry.service import register_unit
from tests.support.clock import pinned
from tests.support.contracts import kisumu_customer
from tests.support.field import agent
from tests.support.money import make_products
from tests.support.staff import TEST_ACTOR

NOW = "2027-03-01T09:00:00+03:00"


def _home_system(conn: psycopg.Connection, settings: Settings, seller: Agent, serial: str) -> tuple[int, str]:
    """An asset-finance home system (2,000 KES deposit, 12 x 1,500 KES) signed today, sold by ``seller``."""
    product = conn.execute("select id from products where code = 'SHS-A'").fetchone()
    asset = int(product[0]) if product else make_products(conn)[0]
    buyer = kisumu_customer(conn, f"Customer {serial}", phone=f"+2547000{int(serial[-5:]):05d}")
    unit = register_unit(conn, settings.secret_key, serial, asset)
    contract = contracts.sign_contract(conn, NewContract(buyer, unit, asset, clock.today()))
    account = str(conn.execute("select account_number from contracts where id = %s", (contract,)).fetchone()[0])  # type: ignore[index]
    service.record_sale(conn, TEST_ACTOR, seller.id, account)
    return contract, account


def _pay(conn: psycopg.Connection, settings: Settings, account: str, txn: str, amount: int,
         reverses: str | None = None) -> payments.Outcome:  # fmt: skip
    """A payment (or the reversal of ``reverses``) on the signed webhook's provider, paid now."""
    event = PaymentEvent("wing", txn, account, amount, "KES", clock.utc_now(), reverses=reverses)
    raw = json.dumps({"transaction_id": txn, "amount": amount, "reverses": reverses}).encode()
    outcome = payments.intake(conn, "wing", raw, event, payments.plain_answer, settings.secret_key)
    assert outcome.status == ("reversed" if reverses else "credited"), outcome
    return outcome


def _commission(conn: psycopg.Connection, who: Agent) -> tuple[int, int, int, int]:
    found = [c for c in repository.commissions(conn, who.id) if c.currency == "KES"]
    return (found[0].earned, found[0].clawed_back, found[0].paid, found[0].due) if found else (0, 0, 0, 0)


@pytest.mark.clock(NOW)
def test_a_reversed_deposit_takes_back_the_whole_deposit_commission(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """The deposit earned 10 %; its reversal took back 3 % (typed a payment), leaving the agent 7 % of money
    that never stayed. The reversal's ledger row is a negative deposit now, and the commission is nil."""
    anna = agent(conn, settings.database_url, "anna", "A1")
    _, account = _home_system(conn, settings, anna, "SHS00001")
    _pay(conn, settings, account, "DEP1", 200_000)
    assert _commission(conn, anna) == (20_000, 0, 0, 20_000)
    _pay(conn, settings, account, "REV-DEP1", 200_000, reverses="DEP1")
    assert _commission(conn, anna) == (0, 0, 0, 0)
    rows = conn.execute("select type, amount from ledger_entries where status = 'completed' order by id").fetchall()
    assert rows == [("deposit", 200_000), ("deposit", -200_000)]


@pytest.mark.clock(NOW)
def test_a_reversal_takes_back_what_its_payment_earned_whenever_it_comes(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """A payment straddling the deposit and the first instalment, made in the rule's first 6 months and
    reversed after them, is taken back part for part: 10 % of its deposit part, 3 % of the rest."""
    anna = agent(conn, settings.database_url, "anna", "A1")
    _, account = _home_system(conn, settings, anna, "SHS00002")
    _pay(conn, settings, account, "PAY1", 350_000)  # 2,000 deposit + 1,500 instalment
    earned = 20_000 + 4_500
    _pay(conn, settings, account, "PAY2", 150_000)
    assert _commission(conn, anna)[0] == earned + 4_500
    with pinned(clock.utc_now() + timedelta(days=200), conn):  # the rule's 6 months are over
        _pay(conn, settings, account, "REV-PAY1", 350_000, reverses="PAY1")
        assert _commission(conn, anna) == (4_500, 0, 0, 4_500)  # PAY2's share only


def _interleave(settings: Settings, first_step: object, second_step: object) -> object:
    """Run ``first_step(conn)`` in a transaction left open on one connection, then ``second_step(conn)`` in
    a thread on another; wait until the second is blocked on a lock held by the first (polled, no timer),
    commit the first and return what the second did (its result or the refusal it raised)."""
    result: dict[str, object] = {}
    first = psycopg.connect(settings.database_url)
    second = psycopg.connect(settings.database_url)
    second_pid = second.info.backend_pid
    for c in (first, second):
        share_clock(c)  # the pinned clock, as the test's own connection has it
    try:
        first_step(first)  # type: ignore[operator]

        def race() -> None:
            try:
                with second.transaction():
                    result["second"] = second_step(second)  # type: ignore[operator]
            except service.AgentError as err:
                result["second"] = err

        thread = threading.Thread(target=race)
        thread.start()
        with psycopg.connect(settings.database_url, autocommit=True) as watcher:
            while not watcher.execute(
                "select wait_event_type = 'Lock' from pg_stat_activity where pid = %s", (second_pid,)
            ).fetchone()[0]:  # type: ignore[index]
                thread.join(0.01)
                assert thread.is_alive(), f"the second did not wait for the first: it did {result}"
        first.commit()
        thread.join()
    finally:
        first.close()
        second.close()
    return result["second"]


@pytest.fixture
def two_agents(settings: Settings, conn: psycopg.Connection) -> tuple[Agent, Agent, str]:
    """Anna sold two contracts (deposits paid: 20,000 + 20,000 KES commission due); Ben none yet. Committed.
    Returns (anna, ben, the account of Anna's first sale)."""
    anna = agent(conn, settings.database_url, "anna", "A1")
    ben = agent(conn, settings.database_url, "ben", "B1")
    _, account = _home_system(conn, settings, anna, "SHS00011")
    _, other = _home_system(conn, settings, anna, "SHS00012")
    _pay(conn, settings, account, "DEP11", 200_000)
    _pay(conn, settings, other, "DEP12", 200_000)
    conn.commit()
    return anna, ben, account


@pytest.mark.clock(NOW)
def test_a_sale_is_not_moved_while_its_agent_is_being_paid(
    settings: Settings, conn: psycopg.Connection, two_agents: tuple[Agent, Agent, str]
) -> None:
    """Finance pays Anna (her payout counts the contract, not committed yet) while someone moves the sale to
    Ben on another connection: the move waits for the payout, then is refused; the contract is paid once."""
    anna, ben, account = two_agents
    outcome = _interleave(
        settings,
        lambda c: service.pay_out(c, TEST_ACTOR, anna.id, "KES", "March payroll"),
        lambda c: service.record_sale(c, TEST_ACTOR, ben.id, account),
    )
    assert isinstance(outcome, service.AgentError) and "paid commissions since" in str(outcome)
    assert _commission(conn, anna) == (40_000, 0, 40_000, 0)
    assert _commission(conn, ben) == (0, 0, 0, 0)


@pytest.mark.clock(NOW)
def test_a_payout_waits_for_a_sale_being_moved_and_leaves_it_out(
    settings: Settings, conn: psycopg.Connection, two_agents: tuple[Agent, Agent, str]
) -> None:
    """The sale is being moved to Ben (not committed yet) when finance pays Anna on another connection: the
    payout waits, then pays Anna for her other sale only; Ben is due the moved one. Paid once."""
    anna, ben, account = two_agents
    payout = _interleave(
        settings,
        lambda c: service.record_sale(c, TEST_ACTOR, ben.id, account),
        lambda c: service.pay_out(c, TEST_ACTOR, anna.id, "KES", "March payroll"),
    )
    assert getattr(payout, "amount", None) == 20_000, payout
    assert _commission(conn, anna) == (20_000, 0, 20_000, 0)
    assert _commission(conn, ben) == (20_000, 0, 0, 20_000)


@pytest.mark.clock(NOW)
def test_the_claw_back_reads_the_day_a_reactivated_contract_really_ended(
    settings: Settings, conn: psycopg.Connection
) -> None:
    """Paid off on day 10, taken below its price by a reversal on day 100 (active again), repossessed that
    day: it ended on day 100, after the 90 days of the claw-back, so nothing is clawed back. (The end date
    used to stay at the pay-off.)"""
    anna = agent(conn, settings.database_url, "anna", "A1")
    contract, account = _home_system(conn, settings, anna, "SHS00021")
    signed = clock.today()
    _pay(conn, settings, account, "DEP21", 200_000)
    with pinned(clock.utc_now() + timedelta(days=10), conn):
        _pay(conn, settings, account, "REST21", 1_800_000)
    assert conn.execute("select state, ended_at is not null from contracts where id = %s", (contract,)).fetchone() == (
        "paid_off", True)  # fmt: skip
    with pinned(clock.utc_now() + timedelta(days=100), conn):
        _pay(conn, settings, account, "REV-REST21", 1_800_000, reverses="REST21")
        assert conn.execute("select state, ended_at from contracts where id = %s", (contract,)).fetchone() == (
            "active", None)  # fmt: skip
        contracts.end_contract(conn, account, "repossessed", TEST_ACTOR, "stopped paying")
        ended = conn.execute("select ended_at from contracts where id = %s", (contract,)).fetchone()[0]  # type: ignore[index]
    assert clock.business_day(ended) == signed + timedelta(days=100)
    assert _commission(conn, anna) == (20_000, 0, 0, 20_000)


@pytest.mark.clock(NOW)
def test_a_sale_returned_within_the_claw_back_days_is_clawed_back(settings: Settings, conn: psycopg.Connection) -> None:
    anna = agent(conn, settings.database_url, "anna", "A1")
    _, account = _home_system(conn, settings, anna, "SHS00031")
    _, kept = _home_system(conn, settings, anna, "SHS00032")
    _pay(conn, settings, account, "DEP31", 200_000)
    _pay(conn, settings, kept, "DEP32", 200_000)
    with pinned(clock.utc_now() + timedelta(days=20), conn):
        contracts.end_contract(conn, account, "returned", TEST_ACTOR, "the customer brought it back")
    assert _commission(conn, anna) == (40_000, 20_000, 0, 20_000)
