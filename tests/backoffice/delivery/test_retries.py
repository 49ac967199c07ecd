"""Issue 21: a unit command left ``sent`` without an acknowledgement is sent again with a growing wait, then
fails where the call centre sees it (the unit page) and can resend; customers' reminders and notices wait
out the quiet hours in the company's time zone, tokens and receipts never do. The clock is pinned and
moved: the dispatcher runs against the real database and its ``paygo_now()``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice import clock
from backoffice.config import Settings
from backoffice.credit import service as credit
from backoffice.delivery import repository
from backoffice.delivery.dispatcher import DevSmsGateway, Policy, dispatch_once
from paygo.web import create_app
from tests.support.clock import pinned
from tests.support.money import Account, make_accounts, make_products
from tests.support.staff import api_token

NAIROBI = ZoneInfo("Africa/Nairobi")


@pytest.fixture
def account(money_settings: Settings, conn: psycopg.Connection) -> Account:
    _, flexible = make_products(conn)
    return make_accounts(conn, money_settings, flexible, 1, "RTY")[0]


def _dispatcher(conn: psycopg.Connection, policy: Policy | None) -> Callable[[datetime], list[str]]:
    """Runs the dispatcher once at an instant (with its default policy unless given one); returns the serials
    it published commands to."""

    def at(instant: datetime) -> list[str]:
        published: list[str] = []
        with pinned(instant, conn, tick=False), conn.transaction():
            if policy is None:
                dispatch_once(conn, DevSmsGateway(), lambda serial, payload: published.append(serial))
            else:
                dispatch_once(conn, DevSmsGateway(), lambda serial, payload: published.append(serial), policy=policy)
        return published

    return at


def _mqtt(conn: psycopg.Connection) -> tuple[str, int, datetime, str | None]:
    row = conn.execute(
        "select state, attempts, next_attempt_at, last_error from outbox where channel = 'mqtt' order by id desc"
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


@pytest.mark.clock("2027-03-03T10:00:00+03:00", tick=False)
def test_an_unanswered_command_is_retried_with_backoff_then_fails_on_the_unit_page(
    money_settings: Settings, conn: psycopg.Connection, account: Account
) -> None:
    credit.apply_payment(conn, account.contract_id, 50_000, clock.today(), money_settings.secret_key)
    conn.commit()
    conn.autocommit = True
    run = _dispatcher(conn, None)  # the defaults, those of the settings too (1 minute doubling to 1 h, 10 sends)
    now = clock.utc_now() + timedelta(minutes=1)  # the database's clock ran on a little since the payment
    assert run(now) == [account.serial]  # the first send (and the SMS, once)
    waits = []
    for _ in range(9):
        state, attempts, due, _ = _mqtt(conn)
        assert state == "sent"
        waits.append(due - now)
        assert run(due - timedelta(seconds=1)) == []  # not before its wait is over
        now = due
        assert run(now) == [account.serial]
    state, attempts, due, error = _mqtt(conn)
    waits.append(due - now)
    assert [w // timedelta(minutes=1) for w in waits] == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert (state, attempts, error) == ("sent", 10, None)
    assert run(due) == []  # the tenth went unanswered too: failed, not sent an eleventh time
    assert _mqtt(conn)[0::3] == ("failed", "no acknowledgement after 10 sends")

    with TestClient(create_app(money_settings), headers=api_token(money_settings.database_url, "call_centre")) as c:
        page = c.get(f"/units/{account.serial}")
        assert page.status_code == 200
        assert "never reached the unit" in page.text and "never arrived" in page.text
        assert "no acknowledgement after 10 sends" in page.text and "/resend" in page.text
        token = c.get(f"/api/v1/units/{account.serial}").json()["tokens"][0]
        assert (token["unit_state"], token["unit_attempts"]) == ("failed", 10)


def _sent_sms(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("select o.kind from sms_messages m join outbox o on o.id = m.outbox_id "
                                       "order by m.id")]  # fmt: skip


@pytest.mark.parametrize("zone", ["Africa/Nairobi", "Asia/Phnom_Penh"])
def test_reminders_wait_for_the_morning_tokens_and_receipts_never_wait(
    money_settings: Settings, conn: psycopg.Connection, account: Account, zone: str
) -> None:
    settings = money_settings.model_copy(update={"timezone": zone})
    policy = Policy.from_settings(settings)
    assert policy.quiet is not None
    local = ZoneInfo(zone)
    evening = datetime.combine(clock.today(zone), datetime.min.time(), local).replace(hour=22)
    with pinned(evening, conn, tick=False):
        credit.apply_payment(conn, account.contract_id, 50_000, clock.today(zone), settings.secret_key)
        repository.queue_sms(conn, account.phone, "Your credit ends in 3 days.", "reminder", account.contract_id)
    conn.commit()
    conn.autocommit = True
    run = _dispatcher(conn, policy)
    assert run(evening + timedelta(minutes=1)) == [account.serial]
    assert _sent_sms(conn) == ["receipt"]  # the token's receipt at 22:00; the reminder waits
    held = conn.execute("select state, attempts, next_attempt_at from outbox where kind = 'reminder'").fetchone()
    assert held is not None and held[:2] == ("pending", 0)
    morning = (evening + timedelta(days=1)).replace(hour=7, minute=0)
    assert held[2] == morning.astimezone(UTC)
    run((evening + timedelta(days=1)).replace(hour=6, minute=59))
    assert _sent_sms(conn) == ["receipt"]
    run(morning)
    assert _sent_sms(conn) == ["receipt", "reminder"]


def test_quiet_hours_on_the_companys_wall_clock() -> None:
    from backoffice.hours import QuietHours

    quiet = QuietHours.parse("20:00-07:00", NAIROBI)
    assert quiet is not None
    for local, until in (("2027-12-31T23:00", "2028-01-01T07:00"), ("2028-01-01T02:30", "2028-01-01T07:00"),
                         ("2028-02-28T20:00", "2028-02-29T07:00")):  # fmt: skip
        at = datetime.fromisoformat(local).replace(tzinfo=NAIROBI)
        assert quiet.until(at) == datetime.fromisoformat(until).replace(tzinfo=NAIROBI)
    for awake in ("2027-12-31T07:00", "2027-12-31T19:59", "2027-12-31T12:00"):
        assert quiet.until(datetime.fromisoformat(awake).replace(tzinfo=NAIROBI)) is None
    # 31 December 23:30 UTC is 02:30 on 1 January in Nairobi: quiet until 07:00 there.
    assert quiet.until(datetime(2027, 12, 31, 23, 30, tzinfo=UTC)) == datetime(2028, 1, 1, 4, 0, tzinfo=UTC)
    day = QuietHours.parse("12:00-14:00", NAIROBI)
    assert day is not None and day.until(datetime(2028, 1, 1, 10, 0, tzinfo=UTC)) == datetime(2028, 1, 1, 11, 0,
                                                                                                tzinfo=UTC)  # fmt: skip
    assert QuietHours.parse("", NAIROBI) is None
    assert date(2028, 2, 29).weekday() == 1


def test_the_dispatchers_defaults_are_the_settings_defaults(settings: Settings) -> None:
    policy = Policy.from_settings(settings)
    defaults = Policy()
    expected = (timedelta(minutes=1), timedelta(hours=1), 10)
    assert (policy.retry_after, policy.retry_max, policy.max_attempts) == expected
    assert (defaults.retry_after, defaults.retry_max, defaults.max_attempts) == expected
    assert policy.quiet is not None and Policy().quiet is None
