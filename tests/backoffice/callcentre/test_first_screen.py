"""The unit page's first screen (issue 26): the state and its reason with a date, the actions that fit,
the latest of each panel; a token the unit acknowledged changes the lock state and credit at once (not
at the next report); the confirmation at the top names what was done; the page stays light."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

import protocol
from backoffice.audit.schemas import Actor
from backoffice.callcentre import answer, service
from backoffice.callcentre.schemas import AlertFact
from backoffice.config import Settings
from backoffice.delivery import dispatcher
from devtools import demo_data
from ingest import writer
from paygo.web import create_app
from tests.support.clock import pinned
from tests.support.staff import csrf_of, login, user

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
pytestmark = pytest.mark.clock(NOW)
CARA = Actor("cara")


def report(conn: psycopg.Connection, unit_id: int, at: datetime, *, locked: bool, credit_s: int, seq: int) -> None:
    """One reading as ingest writes it, received when it was taken."""
    writer.ensure_partitions(conn, at - timedelta(days=1), at + timedelta(days=1))
    writer.write_readings(conn, [(unit_id, at, seq, at, 12.6, None, 0.6, 30.0, None, 10.0, 3.0, 1.0, credit_s, locked,
                                  -70, "1.0")])  # fmt: skip


@pytest.fixture
def out_of_credit(settings: Settings, conn: psycopg.Connection) -> tuple[str, int]:
    """A demo unit whose only token (the deposit's) was issued 40 days ago: out of credit since then; it
    reported ten minutes ago, locked with no credit left."""
    demo_data.seed(conn, settings.secret_key, customers=3)
    serial, unit_id = conn.execute("select serial, id from units order by id limit 1").fetchone()  # type: ignore[misc]
    conn.execute("update tokens set created_at = created_at - interval '40 days' where unit_id = %s", (unit_id,))
    report(conn, unit_id, NOW - timedelta(minutes=10), locked=True, credit_s=0, seq=1)
    conn.commit()
    return serial, unit_id


def _mqtt_delivery(conn: psycopg.Connection, token_id: int) -> int:
    row = conn.execute("select id from outbox where token_id = %s and channel = 'mqtt'", (token_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_an_acknowledged_token_unlocks_the_page_at_once(
    settings: Settings, conn: psycopg.Connection, out_of_credit: tuple[str, int]
) -> None:
    serial, unit_id = out_of_credit
    page = service.load_unit_page(conn, serial)
    assert page is not None and page.answer is not None and page.contract is not None
    assert page.answer.state == "locked" and page.answer.headline == "Locked: out of credit since"
    assert page.answer.since == page.contract.credit_end and page.contract.credit_end < NOW - timedelta(days=30)
    assert page.answer.actions == ["resend", "goodwill"]
    assert page.status.locked is True and page.status.token_acked_at is None

    granted = service.grant_goodwill(conn, settings, serial, 2, "unit was down", CARA, frozenset({"call_centre"}))
    page = service.load_unit_page(conn, serial)
    assert page is not None and page.status.locked is True  # issued, not yet taken by the unit

    # The unit acknowledges the command (what the delivery process does with its cmd/ack message).
    with pinned(NOW + timedelta(minutes=2), conn, tick=False):
        outbox_id = _mqtt_delivery(conn, granted.token_id)
        assert dispatcher.handle_ack(conn, serial, protocol.encode_ack(outbox_id, True))
        page = service.load_unit_page(conn, serial)
    assert page is not None and page.answer is not None
    acked = conn.execute("select acked_at from outbox where id = %s", (outbox_id,)).fetchone()[0]  # type: ignore[index]
    assert abs(acked - (NOW + timedelta(minutes=2))) < timedelta(seconds=5)  # the database's clock, pinned
    assert page.status.token_acked_at == acked
    assert page.status.locked is False and page.status.credit_until == acked + timedelta(days=2)
    assert page.status.credit_s == 2 * 86_400
    assert page.status.reported_locked is True and page.status.reported_credit_s == 0  # the report, kept apart
    assert page.answer.state == "unlocked" and page.answer.since == acked + timedelta(days=2)

    # The next report (after the acknowledgement) is the newest fact again.
    report(conn, unit_id, NOW + timedelta(minutes=10), locked=False, credit_s=2 * 86_400 - 480, seq=2)
    with pinned(NOW + timedelta(minutes=11), conn, tick=False):
        page = service.load_unit_page(conn, serial)
    assert page is not None and page.status.token_acked_at is None and page.status.credit_s == 2 * 86_400 - 480


def test_an_acknowledged_token_adds_to_credit_the_report_still_had(
    settings: Settings, conn: psycopg.Connection, out_of_credit: tuple[str, int]
) -> None:
    """ADD_TIME adds to what is left (the fold of docs/credit_end.md, from the report's credit end)."""
    serial, unit_id = out_of_credit
    report(conn, unit_id, NOW - timedelta(minutes=5), locked=False, credit_s=86_400, seq=2)
    granted = service.grant_goodwill(conn, settings, serial, 1, "sorry", CARA, frozenset({"call_centre"}))
    with pinned(NOW, conn, tick=False):
        assert dispatcher.handle_ack(conn, serial, protocol.encode_ack(_mqtt_delivery(conn, granted.token_id), True))
        page = service.load_unit_page(conn, serial)
    assert page is not None and page.status.token_acked_at is not None
    assert page.status.credit_until == NOW - timedelta(minutes=5) + timedelta(days=2)  # 1 left + 1 given


def test_the_state_its_reason_and_the_actions_that_fit(
    conn: psycopg.Connection, out_of_credit: tuple[str, int]
) -> None:
    serial, unit_id = out_of_credit
    battery = AlertFact(id=7, kind="battery_degrading", opened_on=date(2026, 11, 18), fault=True)
    tamper = AlertFact(id=8, kind="tamper", opened_on=date(2026, 11, 19), fault=True)
    usage = AlertFact(id=9, kind="usage_drop", opened_on=date(2026, 11, 19), fault=False)

    def page_with(*alerts: AlertFact) -> object:
        return service.load_unit_page(conn, serial, alerts=lambda _c, _u: list(alerts))

    tampered = page_with(tamper, battery).answer  # type: ignore[attr-defined]
    assert tampered.state == "tampered" and tampered.since == date(2026, 11, 19)
    assert tampered.actions[0] == "ticket:repair"
    assert [r.text.split(":")[0] for r in tampered.reasons] == ["Tampered", "Locked", "Fault"]
    # A unit with light but a failing battery: faulty, a battery swap first.
    report(conn, unit_id, NOW - timedelta(minutes=5), locked=False, credit_s=86_400, seq=2)
    faulty = page_with(battery, usage).answer  # type: ignore[attr-defined]
    assert faulty.state == "faulty" and faulty.actions == ["ticket:battery_swap", "goodwill"]
    assert faulty.since == date(2026, 11, 18)
    # Silent for over an hour: offline since its last report.
    with pinned(NOW + timedelta(hours=3), conn, tick=False):
        offline = page_with(usage).answer  # type: ignore[attr-defined]
    assert offline.state == "offline" and offline.since == NOW - timedelta(minutes=5)
    assert offline.reasons[0].text == "Offline: no report since"
    # A fresh report with credit: the light is on, nothing to do but note the call.
    on = page_with(usage).answer  # type: ignore[attr-defined]
    assert on.state == "unlocked" and on.actions == ["note"]
    assert on.since == NOW - timedelta(minutes=5) + timedelta(days=1)


def test_locked_while_paid_says_the_token_did_not_arrive(
    conn: psycopg.Connection, out_of_credit: tuple[str, int]
) -> None:
    serial, unit_id = out_of_credit
    conn.execute("update tokens set created_at = %s where unit_id = %s", (NOW - timedelta(hours=1), unit_id))
    page = service.load_unit_page(conn, serial)
    assert page is not None and page.answer is not None
    assert page.answer.state == "locked" and "has not reached the unit" in page.answer.headline
    assert page.answer.actions == ["resend", "ticket:repair"]
    assert answer.OFFLINE_AFTER == timedelta(hours=1)


@pytest.fixture
def cara(settings: Settings, out_of_credit: tuple[str, int]) -> Iterator[tuple[TestClient, str, str]]:
    user(settings.database_url, "cara", "call_centre")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        assert login(client, "cara").status_code == 303  # type: ignore[arg-type]
        serial = out_of_credit[0]
        yield client, serial, csrf_of(client.get(f"/units/{serial}").text)


def test_the_first_screen_and_the_confirmations_at_the_top(
    conn: psycopg.Connection, cara: tuple[TestClient, str, str]
) -> None:
    client, serial, csrf = cara
    page = client.get(f"/units/{serial}")
    assert page.status_code == 200 and len(page.content) < 60_000
    html = page.text
    answer_at = html.index('id="answer"')
    assert answer_at < html.index('id="customer"') < html.index('id="tokens"')  # the answer first, histories below
    assert "Locked: out of credit since" in html and 'id="act-resend"' in html and 'id="act-goodwill"' in html
    for row in ("payment", "token", "ticket", "alert", "note"):
        assert f'id="latest-{row}"' in html
    assert "<script" not in html

    token_id = conn.execute("select max(t.id) from tokens t join units u on u.id = t.unit_id where u.serial = %s",
                            (serial,)).fetchone()[0]  # type: ignore[index]  # fmt: skip
    resent = client.post(f"/units/{serial}/tokens/{token_id}/resend", data={"csrf_token": csrf})
    assert resent.status_code == 303 and "#" not in resent.headers["location"]  # no jump away from the top
    top = client.get(resent.headers["location"]).text
    code = conn.execute("select token from tokens where id = %s", (token_id,)).fetchone()[0]  # type: ignore[index]
    assert f"Token {code[:3]} {code[3:6]} {code[6:]}" in top and top.index('id="done"') < top.index('id="answer"')

    granted = client.post(f"/units/{serial}/goodwill", data={"csrf_token": csrf, "days": 2, "reason": "down"})
    assert "2 goodwill days granted: token" in client.get(granted.headers["location"]).text
    noted = client.post(f"/units/{serial}/notes", data={"csrf_token": csrf, "body": "called about the light"})
    shown = client.get(noted.headers["location"]).text
    assert "Call note saved." in shown and "called about the light" in shown.split('id="latest-note"')[1][:400]
    # Ids that are not this unit's name nothing.
    assert 'id="done"' not in client.get(f"/units/{serial}?done=ticket&ticket=999999").text
