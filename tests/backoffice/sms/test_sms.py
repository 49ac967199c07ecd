"""SMS to customers through the outbox: receipts in the customer's language with the token and the
credit end date, the reminder job (once per contract, credit period and offset; never for contracts
that ended), and a unit's SMS log (the panel and the API)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import httpx
import psycopg
import pytest

from backoffice import clock
from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.credit import service as credit
from backoffice.delivery.dispatcher import DevSmsGateway, dispatch_once
from backoffice.sms import service
from backoffice.templating import templates
from paygo.celery_app import app as celery_app
from tests.support import count
from tests.support.money import MONEY_NOW, Account, make_accounts, make_products
from tests.support.staff import api_token

pytestmark = pytest.mark.clock(MONEY_NOW)


@pytest.fixture
def accounts(money_settings: Settings, conn: psycopg.Connection) -> list[Account]:
    _, flexible = make_products(conn)  # the lamp: 35 KES a day
    return make_accounts(conn, money_settings, flexible, 8, "SMS")


def _language(conn: psycopg.Connection, acct: Account, language: str) -> None:
    conn.execute("update customers set language = %s where id = %s", (language, acct.customer_id))


def _sms(conn: psycopg.Connection, acct: Account, kind: str) -> list[str]:
    rows = conn.execute(
        "select body from outbox where channel = 'sms' and kind = %s and contract_id = %s order by id",
        (kind, acct.contract_id),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.clock("2026-11-03T09:00:00+03:00")
def test_the_receipt_is_in_the_customers_language_with_token_amount_and_end_date(
    money_settings: Settings, conn: psycopg.Connection, accounts: list[Account]
) -> None:
    today = clock.today()
    for acct, language in zip(accounts, ("en", "km", "sw"), strict=False):
        _language(conn, acct, language)
        # Paid for the 7-day deposit, then 10 days, today: light until 17 days from today.
        credit.apply_payment(conn, acct.contract_id, 50_000, today, money_settings.secret_key)
        done = credit.apply_payment(conn, acct.contract_id, 35_000, today, money_settings.secret_key)
        token = str(done.tokens[0]["token"])
        body = _sms(conn, acct, "receipt")[-1]
        spaced = f"{token[:3]} {token[3:6]} {token[6:]}"
        until = (today + timedelta(days=17)).isoformat()
        assert spaced in body and until in body and "350.00 KES" in body and acct.number in body
        assert body.startswith({"en": "Payment of", "km": "បានទទួលប្រាក់", "sw": "Tumepokea malipo"}[language])
    # A language with no template of its own would fall back to English (tests/backoffice/sms/test_text.py);
    # the default language of a customer is English.
    credit.apply_payment(conn, accounts[3].contract_id, 50_000, today, money_settings.secret_key)
    assert _sms(conn, accounts[3], "receipt")[-1].startswith("Payment of")


def _credit_ends(
    conn: psycopg.Connection, settings: Settings, acct: Account, on: date, state: str = "active"
) -> datetime:
    """The contract's 7-day deposit paid so long ago that its credit ends on the company's day ``on`` at
    this time of day (its token issued then: the credit end counts from it); returns that end."""
    paid_at = clock.utc_now() - timedelta(days=7 - (on - clock.today()).days)
    credit.apply_payment(conn, acct.contract_id, 50_000, clock.business_day(paid_at), settings.secret_key,
                         history_at=paid_at)  # fmt: skip
    conn.execute("update contracts set state = %s where id = %s", (state, acct.contract_id))
    return paid_at + timedelta(days=7)


@pytest.mark.clock("2026-11-20T09:00:00+03:00")
def test_reminders_go_once_per_offset_and_never_to_ended_contracts(
    money_settings: Settings, conn: psycopg.Connection, accounts: list[Account]
) -> None:
    today = clock.today()
    a, b, c, repossessed, paid_off, later, lapsed, returned = accounts
    _language(conn, a, "km")
    ends = {acct.number: _credit_ends(conn, money_settings, acct, today + timedelta(days=d), state)
            for acct, d, state in ((a, 3, "active"), (b, 1, "active"),
                                   (c, 2, "active"),  # the 3-day run was missed: it gets the 3-day one now
                                   (repossessed, 3, "repossessed"), (paid_off, 1, "paid_off"), (later, 10, "active"),
                                   (lapsed, -1, "active"), (returned, 1, "returned"))}  # fmt: skip
    assert clock.business_day(ends[a.number]) == today + timedelta(days=3)

    first = service.send_reminders(conn, today, [3, 1])
    assert (first.considered, first.queued, first.already_sent) == (3, 3, 0)
    assert {(r[0], r[1]) for r in conn.execute("select contract_id, days_before from sms_reminders")} == {
        (a.contract_id, 3), (b.contract_id, 1), (c.contract_id, 3)}  # fmt: skip
    assert _sms(conn, a, "reminder")[0].startswith("ឥណទានសូឡា") and "2026-11-23" in _sms(conn, a, "reminder")[0]
    assert "(1 day left)" in _sms(conn, b, "reminder")[0] and "2 days left" in _sms(conn, c, "reminder")[0]
    for ended in (repossessed, paid_off, later, lapsed, returned):
        assert _sms(conn, ended, "reminder") == []

    again = service.send_reminders(conn, today, [3, 1])  # a second run the same day: nothing new
    assert (again.queued, again.already_sent) == (0, 3)
    two_days_on = service.send_reminders(conn, today + timedelta(days=2), [3, 1])
    assert two_days_on.queued == 1 and len(_sms(conn, a, "reminder")) == 2  # a's 1-day reminder
    assert len(_sms(conn, c, "reminder")) == 1  # c's credit ends that day: nothing more to remind of
    # The customer paid: a new credit period, reminded again when it nears its end.
    paid = credit.apply_payment(conn, b.contract_id, 30 * 3_500, today, money_settings.secret_key)
    assert paid.light_until == today + timedelta(days=31)  # from its end, which had not come
    assert service.send_reminders(conn, today + timedelta(days=28), [3, 1]).queued == 1
    assert len(_sms(conn, b, "reminder")) == 2
    assert count(conn, "select count(*) from outbox where kind = 'reminder' and token_id is null") == 5


@pytest.mark.clock("2026-12-31T23:30:00Z")  # already 1 January in Nairobi: the reminder counts the company's days
def test_the_reminder_task_on_the_beat_schedule(
    money_settings: Settings, conn: psycopg.Connection, accounts: list[Account], monkeypatch: pytest.MonkeyPatch
) -> None:
    _credit_ends(conn, money_settings, accounts[0], clock.today() + timedelta(days=2))
    conn.commit()
    monkeypatch.setitem(celery_app.conf, "paygo_settings", money_settings.model_copy(update={"reminder_days": "2"}))
    from backoffice.sms.tasks import send_reminders

    assert send_reminders.apply().get()["queued"] == 1
    assert send_reminders.apply().get()["queued"] == 0  # once
    assert count(conn, "select count(*) from sms_reminders where days_before = 2") == 1
    assert "(2 days left)" in _sms(conn, accounts[0], "reminder")[0]


@pytest.mark.clock("2026-11-16T10:00:00+03:00")
def test_the_sms_log_of_a_unit(money_settings: Settings, conn: psycopg.Connection, server: str,
                               accounts: list[Account]) -> None:  # fmt: skip
    acct = accounts[0]
    _language(conn, acct, "km")
    credit.apply_payment(conn, acct.contract_id, 50_000, clock.today(), money_settings.secret_key)  # 7 days
    service.send_reminders(conn, clock.today() + timedelta(days=4), [3])
    conn.commit()
    conn.autocommit = True
    with conn.transaction():
        dispatch_once(conn, DevSmsGateway(), lambda serial, payload: None)

    panel = service.unit_panel(conn, acct.unit_id)
    assert panel.serial == acct.serial
    assert [(e.kind, e.state, e.encoding) for e in panel.entries] == [("reminder", "acked", "ucs2"),
                                                                       ("receipt", "acked", "ucs2")]  # fmt: skip
    assert all(e.segments == 2 and e.recipient == acct.phone for e in panel.entries)
    with pytest.raises(LookupError):
        service.unit_panel(conn, 999_999)
    html = templates.get_template("panels/sms_log.html").render(panel=panel)
    assert panel.entries[0].body in html and "sent" in html and "UCS-2" in html

    # The call centre resends the deposit's token: the customer gets it again, in Khmer, and it shows.
    token_id = count(conn, "select id from tokens where contract_id = %s", acct.contract_id)
    assert credit.resend_token(conn, token_id, Actor("cara")) == 2
    conn.commit()
    again = service.unit_panel(conn, acct.unit_id).entries[0]
    assert (again.kind, again.state) == ("token_resend", "pending") and again.body.startswith("លេខកូដសូឡារបស់អ្នកម្តងទៀត")
    token = conn.execute("select token from tokens where id = %s", (token_id,)).fetchone()
    assert token is not None and f"{token[0][:3]} {token[0][3:6]} {token[0][6:]}" in again.body

    agent = api_token(money_settings.database_url, "call_centre")
    reply = httpx.get(f"{server}/api/v1/units/{acct.serial}/sms", headers=agent)
    assert reply.status_code == 200
    assert [e["kind"] for e in reply.json()["entries"]] == ["token_resend", "reminder", "receipt"]
    assert httpx.get(f"{server}/api/v1/units/NOPE/sms", headers=agent).status_code == 404
    assert httpx.get(f"{server}/api/v1/units/{acct.serial}/sms").status_code == 401
    finance = api_token(money_settings.database_url, "finance")
    assert httpx.get(f"{server}/api/v1/units/{acct.serial}/sms", headers=finance).status_code == 403
