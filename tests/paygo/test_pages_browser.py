"""The call-centre pages in a real browser (Debian's chromium through Playwright): a unit found by
account number, its contract's token sent again, the KPI charts drawn, the payments page, and not
one request leaving the machine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from playwright.sync_api import Request, sync_playwright

from backoffice.config import Settings
from devtools import demo_data
from kpi.service import take_snapshots
from paygo.web import create_app
from tests.support import serve

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def site(settings: Settings, conn: psycopg.Connection) -> Iterator[str]:
    demo_data.seed(conn, settings.secret_key, customers=8)
    conn.commit()
    with conn.transaction():
        take_snapshots(conn, [date.today().replace(day=1)])
    with serve(create_app(settings), "the web app") as url:
        yield url


def test_pages_in_chromium(site: str, conn: psycopg.Connection) -> None:
    row = conn.execute(
        "select c.account_number, u.serial from contracts c join units u on u.id = c.unit_id order by c.id desc limit 1"
    ).fetchone()
    assert row is not None
    account, serial = row
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()

        def watch(request: Request) -> None:
            if not request.url.startswith(site) and not request.url.startswith("data:"):
                outside.append(request.url)

        page.on("request", watch)
        page.goto(site + "/")
        page.fill("#q", account)
        page.click("button[type=submit]")
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

        page.click("text=KPIs")
        page.wait_for_url("**/kpi")
        assert "Portfolio KPIs" in page.inner_text("h1")
        assert page.locator("svg circle").count() >= 4  # one point on each of the four headline charts
        assert page.locator("svg rect").count() >= 1  # the histograms

        page.click("text=Payments")
        page.wait_for_url("**/payments")
        assert "Unmatched money" in page.inner_text("main")
        browser.close()
    assert outside == []  # every asset is served by the app itself
    queued = conn.execute(
        "select count(*) from outbox o join tokens t on t.id = o.token_id join contracts c on c.id = t.contract_id "
        "where c.account_number = %s",
        (account,),
    ).fetchone()
    assert queued == (4,)  # the deposit token's SMS and command, and both again
