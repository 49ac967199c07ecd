"""SLAs count the company's working hours and holidays on its own wall clock (issue 21), and a ticket shows
both clocks: its due time in working hours and how long it has been open round the clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from backoffice import clock
from backoffice.config import Settings, SettingsError, load_settings
from backoffice.hours import HoursError, QuietHours, WorkingHours
from backoffice.tickets import service
from paygo.web import create_app
from tests.support.clock import pinned
from tests.support.field import agent, sold_lamp
from tests.support.staff import api_token

NAIROBI = ZoneInfo("Africa/Nairobi")
PHNOM_PENH = ZoneInfo("Asia/Phnom_Penh")
WEEK = WorkingHours.parse("Mon-Sat 08:00-18:00", "", NAIROBI)


def at(text: str, zone: ZoneInfo = NAIROBI) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def test_working_hours_skip_nights_sundays_and_holidays() -> None:
    assert WEEK is not None
    friday_5pm = at("2027-03-05T17:00")
    assert WEEK.add(friday_5pm, 3) == at("2027-03-06T10:00")  # 1 h on Friday, 2 on Saturday morning
    with_holiday = WorkingHours.parse("Mon-Sat 08:00-18:00", "2027-03-06", NAIROBI)
    assert with_holiday is not None and with_holiday.add(friday_5pm, 3) == at("2027-03-08T10:00")  # Monday
    assert WEEK.add(at("2027-03-07T12:00"), 0.5) == at("2027-03-08T08:30")  # Sunday: from Monday's opening
    assert WEEK.add(at("2027-03-05T06:00"), 10) == at("2027-03-05T18:00")
    assert WEEK.between(at("2027-03-05T17:00"), at("2027-03-08T09:00")) == timedelta(hours=12)
    assert WEEK.between(at("2027-03-08T09:00"), at("2027-03-05T17:00")) == timedelta(0)
    split = WorkingHours.parse("Mon-Fri 08:00-17:00; Sat 09:00-13:00", "", PHNOM_PENH)
    assert split is not None and split.add(at("2027-03-05T16:00", PHNOM_PENH), 6) == at("2027-03-08T09:00", PHNOM_PENH)
    assert WorkingHours.parse("24/7", "", NAIROBI) is None and WorkingHours.parse(" ", "", NAIROBI) is None
    # The last day of a year in UTC is already the next in Nairobi: the company's wall clock decides.
    assert WEEK.add(datetime(2027, 12, 31, 23, 30, tzinfo=UTC), 1) == at("2028-01-01T09:00")


@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
    hours=st.floats(min_value=0, max_value=500, allow_nan=False).map(lambda h: round(h, 2)),
)
def test_working_time_between_a_start_and_its_due_time_is_the_sla(start: datetime, hours: float) -> None:
    assert WEEK is not None
    due = WEEK.add(start, hours)
    assert due >= start
    assert abs(WEEK.between(start, due) - timedelta(hours=hours)) < timedelta(microseconds=10)


def test_bad_schedules_are_refused_naming_the_setting() -> None:
    for bad in ("Mon-Sat 18:00-08:00", "Monday 08:00-18:00", "08:00"):
        with pytest.raises(HoursError):
            WorkingHours.parse(bad, "", NAIROBI)
    with pytest.raises(SettingsError, match="PAYGO_BUSINESS_HOURS"):
        load_settings(business_hours="Mon-Sat 8-6")
    with pytest.raises(SettingsError, match="PAYGO_HOLIDAYS"):
        load_settings(holidays="25/12/2027")
    with pytest.raises(SettingsError, match="PAYGO_SMS_QUIET_HOURS"):
        load_settings(sms_quiet_hours="20:00-20:00")
    defaults = load_settings()
    assert defaults.working_hours is not None and sorted(defaults.working_hours.week) == [0, 1, 2, 3, 4, 5]
    assert isinstance(defaults.quiet_hours, QuietHours)


@pytest.fixture
def ticketing(settings: Settings, conn: psycopg.Connection) -> Iterator[tuple[TestClient, Settings]]:
    """The call centre's API, a lamp of a customer, repairs due in 3 working hours, Saturday 6 March a
    holiday."""
    a = agent(conn, settings.database_url, "anna", "A1")
    sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina Odhiambo")
    conn.commit()
    s = settings.model_copy(update={"ticket_sla_hours": {"repair": 3}, "holidays": "2027-03-06"})
    with TestClient(create_app(s), headers=api_token(settings.database_url, "call_centre")) as client:
        yield client, s


@pytest.mark.clock("2027-03-05T17:00:00+03:00", tick=False)  # a Friday, an hour before closing in Nairobi
def test_a_ticket_is_due_in_working_hours_and_shows_both_clocks(
    ticketing: tuple[TestClient, Settings], conn: psycopg.Connection
) -> None:
    client, settings = ticketing
    opened = client.post("/api/v1/tickets", json={"serial": "LMP000001", "kind": "repair", "note": "no light"})
    assert opened.status_code == 201, opened.text
    ticket = opened.json()
    # 1 working hour on Friday; Saturday is a holiday and Sunday a day off: due Monday 10:00 in Nairobi.
    assert datetime.fromisoformat(ticket["due_at"]) == at("2027-03-08T10:00")
    with pinned(at("2027-03-08T09:00"), conn, tick=False):
        shown = client.get(f"/api/v1/tickets/{ticket['id']}").json()["ticket"]
        assert (shown["elapsed_hours"], shown["working_hours_elapsed"], shown["breached"]) == (64.0, 2.0, False)
        page = client.get(f"/tickets/{ticket['id']}").text
        assert "Mon 08 Mar 10:00" in page and "2.0 working hours" in page and "64.0 h round the clock" in page
    with (
        pinned(at("2027-03-08T10:30"), conn, tick=False),  # a new app: its pool's connections share the new clock
        TestClient(create_app(settings), headers=api_token(settings.database_url, "call_centre")) as later,
    ):
        late = later.get("/api/v1/tickets", params={"breached": True}).json()
        assert [t["id"] for t in late] == [ticket["id"]] and late[0]["working_hours_elapsed"] == 3.5
    assert service.sla_due("repair", clock.utc_now(), None, None) == clock.utc_now() + timedelta(hours=30)
