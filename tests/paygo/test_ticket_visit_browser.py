"""A field agent on a phone (390 px) in a real browser (issue 26): the customer is not home, so the
visit is recorded without closing the ticket; then it is rescheduled to a day. Each is confirmed at the
top, the ticket stays open with the agent, and not one request leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from backoffice import clock
from backoffice.audit.schemas import SYSTEM
from backoffice.config import Settings
from backoffice.tickets import service
from paygo.web import create_app
from tests.support import serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.field import agent, sold_lamp

pytestmark = pytest.mark.browser
PHONE = (390, 844)


@pytest.fixture
def site(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings), "the web app") as url:
        yield url


def test_a_field_agent_records_customer_not_home_and_keeps_the_ticket(
    site: str, settings: Settings, conn: psycopg.Connection
) -> None:
    a = agent(conn, settings.database_url, "anna", "A1")
    _, _, unit = sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina Odhiambo")
    ticket = service.open_ticket(conn, SYSTEM, unit, "repair", "call_centre", "light flickers", agent_id=a.id)
    conn.commit()
    steps = Steps("field agent visit without closing")
    with chromium(site, viewport=PHONE) as browsing:
        page = browsing.page
        log_in(page, site, "anna", start=f"/tickets/{ticket}")
        page.wait_for_url(f"{site}/tickets/{ticket}")
        steps.shot(page, "the ticket with its visit form")

        page.select_option("#visit-ticket select[name=outcome]", "customer_not_home")
        page.fill("#visit-ticket textarea[name=note]", "gate locked, neighbour says back on Friday")
        page.click("#visit-ticket button[type=submit]")
        page.wait_for_url(f"**/tickets/{ticket}?done=customer_not_home")
        assert "customer not home" in page.inner_text("#done") and "stays open" in page.inner_text("#done")
        assert page.inner_text("#state") == "assigned" and "gate locked" in page.inner_text("#visits")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        steps.shot(page, "customer not home confirmed the ticket stays open")

        day = (clock.today() + timedelta(days=3)).isoformat()
        page.select_option("#visit-ticket select[name=outcome]", "rescheduled")
        page.fill("#visit-ticket input[name=next_visit_on]", day)
        page.click("#visit-ticket button[type=submit]")
        page.wait_for_url(f"**/tickets/{ticket}?done=rescheduled")
        assert f"next visit {day}" in page.inner_text("#visits")
        steps.shot(page, "rescheduled to a day")
    assert browsing.outside == []
    rows = conn.execute("select outcome from ticket_visits where ticket_id = %s order by id", (ticket,)).fetchall()
    assert rows == [("customer_not_home",), ("rescheduled",)]
