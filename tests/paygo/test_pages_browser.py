"""The staff pages in a real browser (Debian's chromium through Playwright): a call-centre agent logs
in, finds a unit by account number and sends its contract's token again, is refused the KPI page with
a clear message, logs out, and the back button shows nothing private; finance sees the KPI charts
and the payments page; not one request leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from backoffice import clock
from backoffice.config import Settings
from devtools import demo_data
from kpi.service import take_snapshots
from paygo.web import create_app
from tests.support import serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.staff import user

# The demo company's contracts sit at fixed distances from now and the snapshot is dated the first of
# the month, so which charts have a point depends on the date (churn needs contracts active 90 days
# before it): the clock is pinned, and the data built from it.
pytestmark = [pytest.mark.browser, pytest.mark.clock("2026-11-30T10:00:00+03:00")]


@pytest.fixture
def site(settings: Settings, conn: psycopg.Connection) -> Iterator[str]:
    demo_data.seed(conn, settings.secret_key, customers=8)
    conn.commit()
    with conn.transaction():
        take_snapshots(conn, [clock.today().replace(day=1)])
    with serve(create_app(settings), "the web app") as url:
        yield url


def test_pages_in_chromium(site: str, settings: Settings, conn: psycopg.Connection) -> None:
    user(settings.database_url, "cara", "call_centre")
    user(settings.database_url, "fred", "finance")
    row = conn.execute(
        "select c.account_number, u.serial from contracts c join units u on u.id = c.unit_id order by c.id desc limit 1"
    ).fetchone()
    assert row is not None
    account, serial = row
    steps = Steps("call centre and finance pages")
    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "cara")
        page.wait_for_url(site + "/")
        page.fill("#q", account)
        page.click("form.search button[type=submit]")  # not the header's log-out button
        page.wait_for_url(f"**/?q={account}")
        rows = page.locator("tbody tr")
        assert rows.count() == 1 and serial in rows.first.inner_text()

        # The call centre opens the contract and sends its deposit token again.
        page.click(f"text={account}")
        page.wait_for_url(f"**/contracts/{account}")
        assert page.locator("#tokens tbody tr").count() == 1
        page.click("text=Resend")
        page.wait_for_url("**resent=*")
        assert "on its way again" in page.inner_text("main")
        steps.shot(page, "contract token resent")

        # The KPI page is for finance and investors: not in the call centre's menu, and refused when typed,
        # saying which role it needs.
        assert page.locator("header nav a", has_text="KPIs").count() == 0
        page.goto(f"{site}/kpi")
        assert "finance or viewer" in page.inner_text("main") and "cara" in page.inner_text("main")
        # Logging out ends the session: the back button then shows the login page, not the contract.
        page.goto(f"{site}/contracts/{account}")
        page.click("text=Log out")
        page.wait_for_url("**/login")
        page.go_back()
        page.wait_for_load_state()
        # (The login form keeps the address asked for, to return to it; nothing of the contract shows.)
        assert "Log in" in page.inner_text("h1") and page.locator("#tokens").count() == 0
        assert serial not in page.content() and "Resend" not in page.content()
        steps.shot(page, "after log-out the back button shows the login")

        log_in(page, site, "fred")
        page.click("text=KPIs")
        page.wait_for_url("**/kpi")
        assert "Portfolio KPIs" in page.inner_text("h1")
        assert page.locator("svg circle").count() >= 4  # one point on each of the four headline charts
        assert page.locator("svg rect").count() >= 1  # the histograms

        page.click("text=Payments")
        page.wait_for_url("**/payments")
        assert "Unmatched money" in page.inner_text("main")
        steps.shot(page, "finance payments page")
    assert browsing.outside == []  # every asset is served by the app itself
    queued = conn.execute(
        "select count(*) from outbox o join tokens t on t.id = o.token_id join contracts c on c.id = t.contract_id "
        "where c.account_number = %s",
        (account,),
    ).fetchone()
    assert queued == (4,)  # the deposit token's SMS and command, and both again
