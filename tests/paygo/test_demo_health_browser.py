"""The demo shows fleet health from minute one: once the demo has written its history, the fleet-health
page (in Debian's chromium) lists the faults of the demo's ground truth and the outreach queue has
people to call, before any nightly job has run."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backoffice.config import Settings
from paygo import demo
from paygo.web import create_app
from tests.support import serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.staff import user

pytestmark = pytest.mark.browser

UNITS = 50


@pytest.fixture
def history(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Path]]:
    settings = settings.model_copy(update={"home": tmp_path})  # the scenarios' truth file goes there
    assert demo.prepare_database(settings, UNITS)
    _, truth, end = demo.write_history(settings, UNITS)
    demo.evaluate_history(settings, end)
    yield settings, truth


def test_the_demo_fleet_health_page_shows_the_history(history: tuple[Settings, Path]) -> None:
    settings, truth = history
    rows = {r["serial"]: r["scenario"] for r in csv.DictReader(truth.open())}
    with psycopg.connect(settings.database_url) as conn:
        open_alerts = conn.execute(
            """select u.serial, a.kind from health_alerts a join units u on u.id = a.unit_id
                where a.resolved_on is null order by a.id"""
        ).fetchall()
        queued = conn.execute("select count(*) from health_outreach").fetchone()
        # The technician alerts raised in the history have their tickets already.
        unticketed = conn.execute(
            """select count(*) from health_alerts where resolved_on is null and ticket_id is null
                 and kind in ('battery_degrading', 'tamper', 'over_temperature')"""
        ).fetchone()
    assert open_alerts and queued and queued[0] > 0
    assert unticketed == (0,)
    # Every open fault alert is on a unit whose scenario is a fault (or a customer behind on payments).
    faulty = {s for s, sc in rows.items() if sc != "healthy"}
    technical = [(s, k) for s, k in open_alerts if k != "locked_too_long"]
    assert technical and all(s in faulty for s, _ in technical)

    user(settings.database_url, "cara", "call_centre")
    steps = Steps("demo fleet health from minute one")
    with serve(create_app(settings), "the web app") as site, chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "cara", start="/fleet-health")
        page.wait_for_url(site + "/fleet-health")
        text = page.inner_text("main")
        assert "No open alert" not in text and "Nobody to call" not in text
        for serial, _ in open_alerts[:10]:
            assert serial in text
        steps.shot(page, "fleet health page")
        assert browsing.outside == []
