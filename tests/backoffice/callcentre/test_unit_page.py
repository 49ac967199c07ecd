"""The unit page: its data from the readings and rollups (the charts end at the newest reading), the
goodwill days (a token, audited, free: no money, days bought unchanged), refused above the caller's
limit with the reason; resending a token of the unit; the page small and whole."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpaygo import decode_token

from backoffice import crypto
from backoffice.callcentre.service import load_unit_page
from backoffice.config import Settings
from devtools import demo_data
from paygo.web import create_app
from tests.support.readings import report_every_20_minutes
from tests.support.staff import api_token, login, user

# The newest reading at 12:00 UTC, two hours before the pinned clock: its day has had sun (the page's
# last day has PV energy), whatever the time of day the suite runs at.
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.clock(END + timedelta(hours=2))


@pytest.fixture
def unit(settings: Settings, conn: psycopg.Connection) -> tuple[str, int]:
    """The demo company; its first unit has reported every 20 minutes for 30 days, until END."""
    demo_data.seed(conn, settings.secret_key, customers=3)
    serial, unit_id = conn.execute("select serial, id from units order by id limit 1").fetchone()  # type: ignore[misc]
    report_every_20_minutes(conn, unit_id, END, 30)
    conn.commit()
    return serial, unit_id


@pytest.fixture
def agent(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=api_token(settings.database_url, "call_centre")) as c:
        yield c


def test_the_page_data_ends_at_the_newest_reading(conn: psycopg.Connection, unit: tuple[str, int]) -> None:
    serial, _ = unit
    page = load_unit_page(conn, serial)
    assert page is not None and page.customer is not None and page.contract is not None
    assert page.as_of == END and page.status.batt_v == pytest.approx(13.37) and page.status.soc == pytest.approx(0.87)
    assert page.readings[-1].ts == END and page.readings[-1].batt_v == pytest.approx(13.37)
    assert len(page.readings) == 7 * 72  # the 7 days before the newest reading, every 20 minutes
    assert len(page.days) == 30 and page.days[-1].day == END.date() and page.days[-1].pv_wh > 0
    assert page.status.credit_until == END + timedelta(days=5)
    assert page.customer.phones and page.contract.paid_total > 0 and page.contract.balance is not None
    assert len(page.tokens) == 1 and page.sms is not None and len(page.sms) == 1  # the deposit's token and SMS
    assert load_unit_page(conn, serial, with_sms=False).sms is None  # type: ignore[union-attr]
    assert load_unit_page(conn, "NO-SUCH-UNIT") is None


def test_goodwill_is_a_token_audited_and_free(
    settings: Settings, conn: psycopg.Connection, unit: tuple[str, int], agent: TestClient
) -> None:
    serial, unit_id = unit
    before = conn.execute("select paid_total, days_granted from contracts where unit_id = %s", (unit_id,)).fetchone()
    ledger = conn.execute("select count(*), sum(amount) from ledger_entries").fetchone()
    conn.commit()
    granted = agent.post(f"/api/v1/units/{serial}/goodwill", json={"days": 3, "reason": "unit was down 3 days"})
    assert granted.status_code == 201, granted.text
    g = granted.json()
    assert g["days"] == 3
    # The token is real: the unit's own OpenPAYGO key decodes it as 3 more days.
    key_enc, code = conn.execute("select openpaygo_key_enc, starting_code from units where id = %s",
                                 (unit_id,)).fetchone()  # type: ignore[misc]  # fmt: skip
    value, count, *_ = decode_token(token=g["token"], secret_key=crypto.decrypt(settings.secret_key, key_enc),
                                    starting_code=code, count=2, used_counts=[2])  # fmt: skip
    assert value == 3
    deliveries = conn.execute("select channel, state from outbox where token_id = %s order by channel",
                              (g["token_id"],)).fetchall()  # fmt: skip
    assert deliveries == [("mqtt", "pending"), ("sms", "pending")]
    # Free credit: no money moved, days bought unchanged, the gift counted apart.
    assert conn.execute("select paid_total, days_granted from contracts where unit_id = %s",
                        (unit_id,)).fetchone() == before  # fmt: skip
    assert conn.execute("select goodwill_days from contracts where unit_id = %s", (unit_id,)).fetchone() == (3,)
    assert conn.execute("select count(*), sum(amount) from ledger_entries").fetchone() == ledger
    trail = conn.execute("select actor, action, after ->> 'days', after ->> 'reason' from audit_log "
                         "where action = 'goodwill-granted'").fetchall()  # fmt: skip
    assert trail == [("token:test-call_centre", "goodwill-granted", "3", "unit was down 3 days")]
    page = agent.get(f"/api/v1/units/{serial}").json()
    assert page["tokens"][0]["goodwill"] is True and page["contract"]["goodwill_days"] == 3
    assert page["goodwill"][0]["reason"] == "unit was down 3 days"


def test_goodwill_above_the_limit_is_refused_with_the_reason(
    settings: Settings, conn: psycopg.Connection, unit: tuple[str, int], agent: TestClient
) -> None:
    serial, _ = unit
    tokens = conn.execute("select count(*) from tokens").fetchone()
    conn.commit()
    refused = agent.post(f"/api/v1/units/{serial}/goodwill", json={"days": settings.goodwill_max_days + 1,
                                                                   "reason": "asked for more"})  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["detail"] == (f"{settings.goodwill_max_days + 1} goodwill days refused: the call centre "
                                        f"may give at most {settings.goodwill_max_days} days at once; an "
                                        f"administrator may give up to {settings.goodwill_admin_max_days}")  # fmt: skip
    assert conn.execute("select count(*) from tokens").fetchone() == tokens
    assert conn.execute("select count(*) from audit_log where action = 'goodwill-granted'").fetchone() == (0,)
    # An administrator's limit is higher.
    with TestClient(create_app(settings), headers=api_token(settings.database_url, "admin")) as admin:
        ok = admin.post(f"/api/v1/units/{serial}/goodwill", json={"days": settings.goodwill_max_days + 1,
                                                                  "reason": "long outage"})  # fmt: skip
        assert ok.status_code == 201
        too_many = admin.post(f"/api/v1/units/{serial}/goodwill", json={"days": settings.goodwill_admin_max_days + 1,
                                                                        "reason": "x"})  # fmt: skip
        assert too_many.status_code == 422 and "an administrator may give at most" in too_many.json()["detail"]


def test_goodwill_grants_that_add_up_past_the_limit_are_refused(
    settings: Settings, conn: psycopg.Connection, unit: tuple[str, int], agent: TestClient
) -> None:
    serial, unit_id = unit
    conn.commit()
    limit = settings.goodwill_max_days
    first = agent.post(f"/api/v1/units/{serial}/goodwill", json={"days": limit - 1, "reason": "down for days"})
    assert first.status_code == 201, first.text
    second = agent.post(f"/api/v1/units/{serial}/goodwill", json={"days": 2, "reason": "and again"})
    assert second.status_code == 422
    assert f"was given {limit - 1} in the last 30 days, and at most {limit} in that time" in second.json()["detail"]
    assert agent.post(f"/api/v1/units/{serial}/goodwill", json={"days": 1, "reason": "the last one"}).status_code == 201
    given = conn.execute("select goodwill_days from contracts where unit_id = %s", (unit_id,)).fetchone()
    assert given == (limit,)


def test_goodwill_for_an_ended_contract_is_refused(conn: psycopg.Connection, unit: tuple[str, int],
                                                   agent: TestClient) -> None:  # fmt: skip
    serial, unit_id = unit
    conn.execute("update contracts set state = 'repossessed' where unit_id = %s", (unit_id,))
    conn.commit()
    refused = agent.post(f"/api/v1/units/{serial}/goodwill", json={"days": 1, "reason": "x"})
    assert refused.status_code == 422 and "is repossessed" in refused.json()["detail"]


def test_resend_a_token_of_this_unit_only(conn: psycopg.Connection, unit: tuple[str, int], agent: TestClient) -> None:
    serial, unit_id = unit
    mine = conn.execute("select id from tokens where unit_id = %s", (unit_id,)).fetchone()[0]  # type: ignore[index]
    other = conn.execute("select id from tokens where unit_id <> %s limit 1", (unit_id,)).fetchone()[0]  # type: ignore[index]
    conn.commit()
    assert agent.post(f"/api/v1/units/{serial}/tokens/{other}/resend").status_code == 404
    done = agent.post(f"/api/v1/units/{serial}/tokens/{mine}/resend")
    assert done.json() == {"token_id": mine, "deliveries_queued": 2}
    sms = agent.get(f"/api/v1/units/{serial}").json()["sms"]
    assert len(sms) == 2 and sms[0]["state"] == "pending"  # the resent SMS is in the unit's SMS log


def test_the_page_is_small_and_its_roles_hold(settings: Settings, unit: tuple[str, int], agent: TestClient) -> None:
    serial, _ = unit
    user(settings.database_url, "fin", "finance")
    with TestClient(create_app(settings)) as browser:  # a session: pages are for people
        login(browser, "fin")  # type: ignore[arg-type]
        page = browser.get(f"/units/{serial}")
        assert page.status_code == 200 and len(page.content) < 300_000
        assert "13.37 V" in page.text and 'id="sms-log"' not in page.text  # finance: no SMS log
        assert "Grant goodwill days" not in page.text  # and no call-centre actions
    for role in ("viewer", "field_agent"):
        with TestClient(create_app(settings), headers=api_token(settings.database_url, role)) as api:
            assert api.get(f"/api/v1/units/{serial}").status_code == 403
            assert api.post(f"/api/v1/units/{serial}/goodwill", json={"days": 1, "reason": "x"}).status_code == 403
    with TestClient(create_app(settings), headers=api_token(settings.database_url, "finance")) as api:
        assert api.post(f"/api/v1/units/{serial}/goodwill", json={"days": 1, "reason": "x"}).status_code == 403
        assert api.get(f"/api/v1/units/{serial}").json()["sms"] is None
