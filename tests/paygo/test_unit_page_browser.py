"""The call centre in a real browser (Debian's chromium through Playwright): log in, type a customer's
phone number with spaces into the search box, land on the unit page whose charts show the newest
reading, resend a token and see it in the SMS log, be refused goodwill days above the limit with the
reason, write a call note; a screenshot of each step, and not one request leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from backoffice import clock
from backoffice.config import Settings
from devtools import demo_data
from paygo.web import create_app
from tests.support import serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.readings import report_every_20_minutes
from tests.support.staff import user

pytestmark = pytest.mark.browser


@pytest.fixture
def site(settings: Settings, conn: psycopg.Connection) -> Iterator[str]:
    demo_data.seed(conn, settings.secret_key, customers=5)
    conn.commit()
    with serve(create_app(settings), "the web app") as url:
        yield url


def test_the_call_centre_finds_a_unit_by_phone_and_acts(
    site: str, settings: Settings, conn: psycopg.Connection
) -> None:
    user(settings.database_url, "cara", "call_centre")
    serial, unit_id, phone = conn.execute(
        """select u.serial, u.id, ph.e164 from contracts c join units u on u.id = c.unit_id
             join customer_phones ph on ph.customer_id = c.customer_id and ph.position = 0
            order by c.id desc limit 1"""
    ).fetchone()  # type: ignore[misc]
    report_every_20_minutes(conn, unit_id, clock.utc_now().replace(microsecond=0) - timedelta(minutes=7), 30)
    conn.commit()
    national = f"0{phone[4:7]} {phone[7:10]} {phone[10:]}"  # +254712345678 typed as 0712 345 678
    name = conn.execute("select name from units u join contracts c on c.unit_id = u.id join customers cu "
                        "on cu.id = c.customer_id where u.serial = %s", (serial,)).fetchone()[0]  # type: ignore[index]  # fmt: skip
    misspelt = name[:2] + ("e" if name[2] != "e" else "a") + name[3:]
    steps = Steps("call centre unit page")
    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "cara")
        # A misspelt name lists the customers it may mean, each saying what matched.
        page.fill("header input[name=q]", misspelt)
        page.click("header form.find button[type=submit]")
        page.wait_for_url("**/search?q=*")
        first = page.locator("#hits tbody tr").first.inner_text()
        assert name in first and "name:" in first
        steps.shot(page, "a misspelt name lists who it may mean")

        page.fill("header input[name=q]", national)
        steps.shot(page, "a phone number typed with spaces")
        page.click("header form.find button[type=submit]")
        page.wait_for_url(f"**/units/{serial}")  # one exact hit: straight to its unit
        assert serial in page.inner_text("h1")
        # The charts end at the newest reading, and show its value (13.37 V, 87 %).
        assert page.text_content("#chart-batt-v-7d text.latest") == "13.37 V"
        assert page.text_content("#chart-soc-7d text.latest") == "87 %"
        assert page.locator("#charts-30d svg rect").count() >= 30  # a bar a day, PV and load
        steps.shot(page, "the unit page with its charts")

        page.locator("#tokens button", has_text="Resend").first.click()
        page.wait_for_url(f"**/units/{serial}?done=resent*")
        token = page.inner_text("#tokens tbody tr:first-child code").replace(" ", "")
        sms = page.locator("#sms-log tbody tr")
        assert sms.count() == 2 and "pending" in sms.first.inner_text()
        assert token[:3] in sms.first.inner_text()  # the token's own SMS, queued again
        steps.shot(page, "the token resent is in the SMS log")

        page.fill("#goodwill-form input[name=days]", str(settings.goodwill_max_days + 1))
        page.fill("#goodwill-form input[name=reason]", "the customer asks for more")
        page.click("#goodwill-form button[type=submit]")
        page.wait_for_load_state()
        refused = page.inner_text("#refused")
        assert f"at most {settings.goodwill_max_days} days" in refused and "refused" in refused
        steps.shot(page, "goodwill above the limit refused with the reason")

        page.fill("#note-form textarea", "Customer lost the SMS; token sent again.")
        page.click("#note-form button[type=submit]")
        page.wait_for_url(f"**/units/{serial}?done=noted*")
        assert "Customer lost the SMS" in page.inner_text("#call-notes") and "cara" in page.inner_text("#call-notes")
        steps.shot(page, "the call note is kept")
    assert browsing.outside == []
    assert conn.execute("select count(*) from goodwill_grants").fetchone() == (0,)
