"""The KPI page's portfolio quality in a real browser (Debian's chromium through Playwright): a viewer
sees the aging bar with its shares and counts, collection rates beside PAR, write-offs and recoveries,
first-payment default with its cohort size and one vintage curve per acquisition month, downloads the
loan tape, and not one request leaves the machine (no script, no outside asset)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from backoffice.config import Settings
from kpi.service import take_snapshots
from paygo.web import create_app
from tests.support import serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.staff import user

from .test_examples import EXAMPLES
from .test_snapshots import load_example

pytestmark = pytest.mark.browser
MEDIUM = EXAMPLES / "medium"
AS_OF = date(2023, 3, 31)


@pytest.fixture
def site(settings: Settings, conn: psycopg.Connection) -> Iterator[str]:
    load_example(conn, MEDIUM)
    with conn.transaction():
        take_snapshots(conn, [date(2023, 1, 31), date(2023, 2, 28), AS_OF], MEDIUM / "company.json")
    with serve(create_app(settings), "the web app") as url:
        yield url


def test_portfolio_quality_on_the_kpi_page(site: str, settings: Settings) -> None:
    want = json.loads((MEDIUM / "perform-expected-2023-03-31.json").read_text())["portfolio_quality"]
    user(settings.database_url, "vera", "viewer")
    steps = Steps("kpi portfolio quality")
    with chromium(site, viewport=(1400, 1000)) as browsing:
        page = browsing.page
        log_in(page, site, "vera", start="/kpi")
        page.wait_for_url("**/kpi")
        assert page.locator("script").count() == 0
        section = page.locator("#quality")
        assert "Portfolio quality on 2023-03-31" in section.inner_text()

        aging = page.locator("figure.aging")
        legend = aging.locator("ul.legend").inner_text()
        for bucket, label in (("current", "current"), ("1_30", "1–30 d"), ("91_180", "91–180 d")):
            share, count = want["aging"][bucket], want["aging_count"][bucket]
            assert f"{label}: {100 * share:.1f} % ({count} units)" in legend
        shown = sum(1 for b in want["aging"].values() if b)
        assert aging.locator("svg rect[fill]").count() >= shown  # one bar part per non-empty bucket
        steps.shot(page, "kpi page")

        table = page.locator("table.quality").inner_text()
        assert f"{100 * want['collection_rate']['30']:.1f} %" in table
        assert f"{100 * want['collection_rate']['90']:.1f} %" in table
        assert f"{want['write_offs_12m']:,.0f} KES" in table
        assert f"{100 * want['first_payment_default']['30']:.1f} %" in table
        assert f"of {want['first_payment_default_n']['30']} units" in table

        vintage = page.locator("figure.vintage")
        assert vintage.locator("g.cohort").count() == len(want["vintage"])  # one line per acquisition month
        assert vintage.locator("g.cohort path").count() == len(want["vintage"])
        assert "2022-01" in vintage.locator("ul.legend").inner_text()
        vintage.scroll_into_view_if_needed()
        section.scroll_into_view_if_needed()
        steps.shot(page, "portfolio quality")

        with page.expect_download() as download:
            page.click("text=Download the loan tape (CSV)")
        path = download.value.path()
        assert download.value.suggested_filename == "loan-tape-2023-03-31.csv"
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        expected = (MEDIUM / "perform-tape-2023-03-31.csv").read_text().splitlines()
        assert len(rows) == len(expected) - 1 and rows[0]["receipt_id"] == expected[1].split(",")[0]
    assert browsing.outside == []  # every asset is served by the app itself
