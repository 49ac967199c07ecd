"""Field operations in a real browser (Debian's chromium through Playwright), the agent on a phone
(390 px): a field agent logs in and sees only their own tickets (another agent's is not found), closes
a battery swap with the part used (their stock goes down), and a repossession; the call centre brings
the unit back into stock; the administrator finds every stock move and the contract's end in the
audit trail. Not one request leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from backoffice.audit.schemas import SYSTEM
from backoffice.config import Settings
from backoffice.tickets import service
from paygo.web import create_app
from tests.support import serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.field import agent, main_warehouse, parts_for, sold_lamp
from tests.support.staff import user

pytestmark = pytest.mark.browser
PHONE = (390, 844)


@pytest.fixture
def site(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings), "the web app") as url:
        yield url


@pytest.fixture
def field(settings: Settings, conn: psycopg.Connection) -> dict[str, int]:
    a = agent(conn, settings.database_url, "anna", "A1")
    b = agent(conn, settings.database_url, "ben", "B1")
    parts_for(conn, a, "BAT-12V", 3)
    _, _, unit_a = sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina Odhiambo")
    _, _, unit_b = sold_lamp(conn, settings.secret_key, b, "LMP000002", "Baraka Ouma")
    ids = {
        "swap": service.open_ticket(conn, SYSTEM, unit_a, "battery_swap", "call_centre", "dim at night", agent_id=a.id),
        "repo": service.open_ticket(
            conn, SYSTEM, unit_a, "repossession", "call_centre", "90 days unpaid", agent_id=a.id
        ),
        "other": service.open_ticket(conn, SYSTEM, unit_b, "repair", "alert", "panel covered", agent_id=b.id),
        "location_a": a.location_id or 0,
    }
    conn.commit()
    user(settings.database_url, "cara", "call_centre")
    user(settings.database_url, "ada", "admin")
    return ids


def _fits_the_phone(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_field_agent_on_a_phone_then_stock_and_audit(
    site: str, settings: Settings, conn: psycopg.Connection, field: dict[str, int]
) -> None:
    steps = Steps("field agent tickets on a phone")
    with chromium(site, viewport=PHONE) as browsing:
        page = browsing.page
        log_in(page, site, "anna", start="/tickets")
        page.wait_for_url(site + "/tickets")
        cards = page.locator("#tickets li.card")
        assert cards.count() == 2
        text = page.inner_text("#tickets")
        assert "Amina Odhiambo" in text and "Baraka" not in text and "panel covered" not in text
        assert _fits_the_phone(page)
        steps.shot(page, "only my tickets")

        page.goto(f"{site}/tickets/{field['other']}")
        assert "No such ticket" in page.inner_text("h1") and "Baraka" not in page.content()
        steps.shot(page, "another agents ticket is not found")

        # The battery swap: the part comes out of the agent's stock.
        page.goto(f"{site}/tickets")
        page.click(f"li[data-ticket='{field['swap']}'] a")
        page.wait_for_url(f"**/tickets/{field['swap']}")
        page.select_option("#close-ticket select[name=sku]", "BAT-12V")
        page.fill("#close-ticket textarea[name=note]", "battery swapped, lights bright again")
        steps.shot(page, "battery swap visit form")
        page.click("#close-ticket button[type=submit]")
        page.wait_for_load_state()
        assert page.inner_text("#state") == "done"
        assert "1 × Battery 12 V 7 Ah" in page.inner_text("#parts-used")
        assert _fits_the_phone(page)
        steps.shot(page, "battery swap done")
        page.goto(f"{site}/agents/me")
        assert "BAT-12V): 2" in page.inner_text("#my-parts")
        assert page.inner_text("#customers").count("·") == 1 and "Amina Odhiambo" in page.inner_text("#customers")
        assert _fits_the_phone(page)
        steps.shot(page, "my stock went down")

        # The repossession: the contract ends and the unit comes with the agent.
        page.goto(f"{site}/tickets/{field['repo']}")
        page.fill("#close-ticket textarea[name=note]", "customer handed the kit over")
        page.click("#close-ticket button[type=submit]")
        page.wait_for_load_state()
        assert page.inner_text("#state") == "done"
        assert "repossessed at Agent A1" in page.inner_text("#unit")
        steps.shot(page, "repossession done")
        page.click("text=Log out")
        page.wait_for_url("**/login")
    assert browsing.outside == []
    assert conn.execute(
        "select quantity from part_stock where location_id = %s and sku = 'BAT-12V'", (field["location_a"],)
    ).fetchone() == (2,)
    conn.commit()

    desk = Steps("repossessed unit back in stock and audited")
    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "cara", start="/inventory?q=LMP000001")
        page.wait_for_url("**/inventory?q=LMP000001")
        assert "repossessed" in page.inner_text("#units")
        for action in ("return_to_warehouse", "refurbished"):
            page.select_option("#move-form select[name=action]", action)
            page.click("#move-form button[type=submit]")
            page.wait_for_url(f"**done={action}")
        assert "in_stock" in page.inner_text("#units") and "Main warehouse" in page.inner_text("#units")
        desk.shot(page, "unit back in stock")
        page.click("text=Log out")
        page.wait_for_url("**/login")

        log_in(page, site, "ada", start="/audit?entity_id=LMP000001")
        page.wait_for_url("**/audit?entity_id=LMP000001")
        trail = page.inner_text("table")
        for action in ("unit-repossess", "unit-return-to-warehouse", "unit-refurbished"):
            assert action in trail, action
        desk.shot(page, "audit trail of the unit")
        page.goto(f"{site}/audit?entity=contract")
        assert "contract-repossessed" in page.inner_text("table")
        desk.shot(page, "audit trail of the contract's end")
    assert browsing.outside == []
    rows = conn.execute(
        """select a.action, a.actor from audit_log a where a.entity = 'unit' and a.entity_id = 'LMP000001'
            order by a.id"""
    ).fetchall()
    assert rows == [("unit-repossess", "anna"), ("unit-return-to-warehouse", "cara"), ("unit-refurbished", "cara")]
    moves = conn.execute(
        "select count(*) from stock_moves m join units u on u.id = m.unit_id where u.serial = 'LMP000001'"
    ).fetchone()
    assert moves == (len(rows),)  # every move of the unit has its audit row
    assert conn.execute(
        "select count(*) from audit_log where action = 'contract-repossessed' and actor = 'anna'"
    ).fetchone() == (1,)
    unit = conn.execute(
        "select u.state, l.location_id from units u join unit_locations l on l.unit_id = u.id "
        "where u.serial = 'LMP000001'"
    ).fetchone()
    assert unit == ("in_stock", main_warehouse(conn))
