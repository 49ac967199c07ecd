"""A caller's task in a real browser (issue 26): "my light is off". The call centre finds the unit, and
its first screen says why (locked: out of credit since …) with the actions that fit; a goodwill token
is granted from there and confirmed at the top; once the unit acknowledges it, the page says the light
is on at once; a repair ticket opened from the page goes to the agent of the customer's area, confirmed
at the top; a viewer and a field agent are refused the page. A numbered screenshot of each step."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

import protocol
from backoffice import clock
from backoffice.config import Settings
from backoffice.delivery import dispatcher
from devtools import demo_data
from ingest import writer
from paygo.web import create_app
from tests.support import serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.staff import user

pytestmark = pytest.mark.browser


@pytest.fixture
def site(settings: Settings, conn: psycopg.Connection) -> Iterator[str]:
    demo_data.seed(conn, settings.secret_key, customers=8)
    conn.commit()
    with serve(create_app(settings), "the web app") as url:
        yield url


def _out_of_credit_unit(conn: psycopg.Connection) -> tuple[str, int, str]:
    """A unit whose customer lives where an agent works; its tokens were issued 40 days ago and it
    reported ten minutes ago, locked with no credit: (serial, unit id, the agent's name)."""
    serial, unit_id, agent = conn.execute(
        """select u.serial, u.id, a.name from contracts c join units u on u.id = c.unit_id
             join customers cu on cu.id = c.customer_id
             join agent_areas ar on ar.village = cu.village join agents a on a.id = ar.agent_id
            where c.state = 'active' order by c.id limit 1"""
    ).fetchone()  # type: ignore[misc]
    conn.execute("update tokens set created_at = created_at - interval '40 days' where unit_id = %s", (unit_id,))
    at = clock.utc_now().replace(microsecond=0) - timedelta(minutes=10)
    writer.ensure_partitions(conn, at - timedelta(days=1), at + timedelta(days=1))
    writer.write_readings(conn, [(unit_id, at, 1, at, 12.2, None, 0.4, 30.0, None, 0.0, 0.0, 0.0, 0, True, -70,
                                  "1.0")])  # fmt: skip
    conn.commit()
    return serial, unit_id, agent


def test_the_call_centre_answers_why_the_light_is_off(site: str, settings: Settings, conn: psycopg.Connection) -> None:
    user(settings.database_url, "cara", "call_centre")
    serial, unit_id, agent = _out_of_credit_unit(conn)
    steps = Steps("unit page first screen")
    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "cara")
        page.fill("header input[name=q]", serial)
        page.click("header form.find button[type=submit]")
        page.wait_for_url(f"**/units/{serial}")
        # The first screen answers: locked, out of credit since a date, and what to do.
        assert page.inner_text("#state-word") == "Locked"
        assert "out of credit since" in page.inner_text("#reason")
        box = page.locator("#answer").bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900  # all of it on the first screen
        assert page.locator("#act-resend").count() == 1 and page.locator("#act-goodwill").count() == 1
        assert len(page.content().encode()) < 60_000 and page.locator("script").count() == 0
        steps.shot(page, "the first screen says locked out of credit since")

        page.fill("#act-goodwill input[name=reason]", "customer waited for a technician")
        page.click("#act-goodwill button[type=submit]")
        page.wait_for_url(f"**/units/{serial}?done=goodwill*")
        done = page.locator("#done")
        assert "1 goodwill day granted: token" in done.inner_text()
        assert done.bounding_box()["y"] < 200  # type: ignore[index]  # at the top, in view
        assert page.inner_text("#state-word") == "Locked"  # issued; the unit has not taken it yet
        steps.shot(page, "goodwill granted confirmed at the top")

        # The unit takes the token and acknowledges its command (as the delivery process records it).
        outbox_id = conn.execute(
            """select o.id from outbox o join tokens t on t.id = o.token_id
                where t.unit_id = %s and o.channel = 'mqtt' order by o.id desc limit 1""",
            (unit_id,),
        ).fetchone()[0]  # type: ignore[index]
        assert dispatcher.handle_ack(conn, serial, protocol.encode_ack(outbox_id, True))
        conn.commit()
        page.goto(f"{site}/units/{serial}")
        assert page.inner_text("#state-word") == "Light on"
        assert "acknowledged" in page.inner_text("#from-token") and "acknowledged" in page.inner_text("#latest-token")
        steps.shot(page, "the acknowledged token turns the light on at once")

        page.select_option("#ticket-form select[name=kind]", "repair")
        assert agent in page.locator("#ticket-form select[name=agent_id] option[selected]").inner_text()
        page.fill("#ticket-form input[name=note]", "light still dim in the evening")
        page.click("#ticket-form button[type=submit]")
        page.wait_for_url(f"**/units/{serial}?done=ticket*")
        confirmed = page.inner_text("#done")
        assert "(repair) opened, assigned to " + agent in confirmed
        assert "repair" in page.inner_text("#latest-ticket")
        steps.shot(page, "a repair ticket for the agent of the area confirmed")
    assert browsing.outside == []
    actions = conn.execute(
        "select action from audit_log where actor = 'cara' and action in ('goodwill-granted', 'ticket-opened')"
    ).fetchall()
    assert sorted(a for (a,) in actions) == ["goodwill-granted", "ticket-opened"]


def test_a_viewer_and_a_field_agent_are_refused_the_unit_page(
    site: str, settings: Settings, conn: psycopg.Connection
) -> None:
    serial = conn.execute("select serial from units order by id limit 1").fetchone()[0]  # type: ignore[index]
    user(settings.database_url, "vic", "viewer")
    user(settings.database_url, "fred", "field_agent")
    steps = Steps("unit page refused")
    for name in ("vic", "fred"):
        with chromium(site) as browsing:
            page = browsing.page
            log_in(page, site, name)
            answer = page.goto(f"{site}/units/{serial}")
            assert answer is not None and answer.status == 403
            assert page.locator("#answer").count() == 0
            steps.shot(page, f"{name} is refused the unit page")
