"""The call centre's tasks that needed the API, on pages in Debian's chromium (issue 26), a screenshot
per step: a MoMo request-to-pay (the stand-in MTN asks the wallet; once approved the light is credited),
and acknowledging a fleet-health alert. A viewer is refused both, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from backoffice import clock
from backoffice.config import Settings
from backoffice.registry import repository as registry
from devtools import demo_data
from paygo.web import create_app
from tests.support import count, serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.momo import Wallets, momo_standin
from tests.support.money import MONEY_NOW, make_accounts
from tests.support.staff import csrf_of, login, user

pytestmark = pytest.mark.browser


@pytest.fixture
def momo_site(money_settings: Settings) -> Iterator[tuple[str, Settings, Wallets]]:
    with momo_standin(money_settings) as (settings, wallets), serve(create_app(settings), "the web app") as url:
        yield url, settings, wallets


@pytest.mark.clock(MONEY_NOW)
def test_the_call_centre_asks_a_momo_wallet_for_a_payment_in_chromium(
    momo_site: tuple[str, Settings, Wallets], conn: psycopg.Connection
) -> None:
    site, settings, wallets = momo_site
    product = registry.insert_product(conn, code="UG-M", name="Lamp UG", business_model="flexible", currency="UGX",
                                      hardware_cost=100_000, price_per_day=1_000, deposit_amount=0,
                                      deposit_days=0)  # fmt: skip
    (acct,) = make_accounts(conn, settings, product, 1, "MOMO")
    user(settings.database_url, "cara", "call_centre")
    steps = Steps("call centre asks a momo wallet for a payment")
    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "cara", start="/payments/momo")
        page.wait_for_url("**/payments/momo")
        page.fill("input[name=account]", acct.number)
        page.fill("input[name=amount]", "5000")
        page.select_option("select[name=currency]", "UGX")
        page.fill("input[name=msisdn]", "+256 700 000 001")
        steps.shot(page, "the request")
        with page.expect_navigation():
            page.click("#momo button")
        done = page.inner_text("#done")
        assert f"Asked 256700000001 for 5,000 UGX to account {acct.number}" in done
        steps.shot(page, "asked")
        (reference,) = wallets.requests
        assert wallets.requests[reference]["body"]["amount"] == "5000"
        # The customer approves on the phone; MTN calls back; the light is credited.
        wallets.requests[reference]["callback"] = f"{site}/payments/momo/callback/{reference}"
        approved = wallets.approve(reference)
        assert approved is not None and approved.json()["status"] == "credited"
        page.goto(f"{site}/payments")
        assert reference in page.inner_text("main") or "credited" in page.inner_text("main")
        steps.shot(page, "credited in the inbox")
        # An account that fails its check digit is explained, and nothing is asked of MTN.
        page.goto(f"{site}/payments/momo")
        page.fill("input[name=account]", acct.number[:-1] + str((int(acct.number[-1]) + 1) % 10))
        page.fill("input[name=amount]", "5000")
        page.fill("input[name=msisdn]", "256700000001")
        with page.expect_navigation():
            page.click("#momo button")
        assert "fails its check digit" in page.inner_text("#error") and len(wallets.requests) == 1
        steps.shot(page, "a mistyped account is explained")
        assert browsing.outside == []
    conn.commit()
    assert count(conn, "select count(*) from audit_log where actor = 'cara' and action = 'momo-requested'") == 1
    assert count(conn, "select paid_total from contracts where id = %s", acct.contract_id) == 5000


def _alert(conn: psycopg.Connection, settings: Settings) -> tuple[int, str]:
    demo_data.seed(conn, settings.secret_key, customers=2)
    unit, serial = conn.execute("select id, serial from units order by id limit 1").fetchone()  # type: ignore[misc]
    day = clock.today()
    row = conn.execute(
        """insert into health_alerts (unit_id, kind, opened_on, last_seen_on, evidence)
           values (%s, 'pv_underperformance', %s, %s, '{"ratio": 0.31}') returning id""",
        (unit, day, day),
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0]), serial


def test_the_call_centre_acknowledges_an_alert_in_chromium(settings: Settings, conn: psycopg.Connection) -> None:
    alert_id, serial = _alert(conn, settings)
    user(settings.database_url, "cara", "call_centre")
    steps = Steps("call centre acknowledges an alert")
    with serve(create_app(settings), "the web app") as site, chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "cara", start="/fleet-health")
        page.wait_for_url("**/fleet-health")
        steps.shot(page, "the alerts")
        page.click(f"a[href='/fleet-health/alerts/{alert_id}']")
        page.wait_for_url(f"**/fleet-health/alerts/{alert_id}")
        assert serial in page.inner_text("h1") and page.inner_text("#acknowledged") == "not yet"
        steps.shot(page, "one alert")
        with page.expect_navigation():
            page.click("#acknowledge button")
        assert f"Alert #{alert_id} (pv underperformance on {serial}) acknowledged by cara" in page.inner_text("#done")
        assert page.inner_text("#acknowledged").startswith("by cara") and page.locator("#acknowledge").count() == 0
        steps.shot(page, "acknowledged")
        assert browsing.outside == []
    assert count(conn, "select count(*) from audit_log where actor = 'cara' and action = 'health.acknowledge'") == 1


def test_a_viewer_is_refused_the_momo_request_and_the_acknowledgement(
    settings: Settings, conn: psycopg.Connection
) -> None:
    alert_id, _ = _alert(conn, settings)
    user(settings.database_url, "vic", "viewer")
    with serve(create_app(settings), "the web app") as site, httpx.Client(base_url=site) as web:
        login(web, "vic")
        page = web.get(f"/fleet-health/alerts/{alert_id}")  # a viewer may read the alert, without the button
        assert page.status_code == 200 and 'id="acknowledge"' not in page.text
        csrf = csrf_of(page.text)
        assert web.post(f"/fleet-health/alerts/{alert_id}/acknowledge", data={"csrf_token": csrf}).status_code == 403
        assert web.get("/payments/momo").status_code == 403
        momo = {"csrf_token": csrf, "account": "00000018", "amount": "5", "currency": "UGX", "msisdn": "256700000001"}
        assert web.post("/payments/momo", data=momo).status_code == 403
    assert count(conn, "select count(*) from health_alerts where acknowledged_at is not null") == 0
    assert count(conn, "select count(*) from momo_requests") == 0
