"""The unit page's field-operations panel (``unit_panel`` and ``panels/tickets.html``): the unit's
lifecycle and place, its open tickets (breaches marked), its stock moves; and an installation ticket
done puts a unit from the agent's stock at the customer's."""

from __future__ import annotations

import psycopg
from starlette.requests import Request

from backoffice.audit.schemas import SYSTEM
from backoffice.config import Settings
from backoffice.inventory import service as inventory
from backoffice.templating import templates
from backoffice.tickets import service
from backoffice.tickets.panel import unit_panel
from backoffice.tickets.schemas import Closing
from tests.support.field import agent, lamp_product, received, sold_lamp
from tests.support.staff import TEST_ACTOR


def _render(panel: object) -> str:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""})
    return templates.get_template("panels/tickets.html").render(panel=panel, request=request)


def test_the_panel_shows_where_the_unit_is_and_its_open_tickets(settings: Settings, conn: psycopg.Connection) -> None:
    a = agent(conn, settings.database_url, "anna", "A1")
    _, _, unit_id = sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina")
    late = service.open_ticket(conn, SYSTEM, unit_id, "repair", "alert", "no charge", agent_id=a.id)
    conn.execute("update tickets set due_at = now() - interval '1 hour' where id = %s", (late,))
    service.open_ticket(conn, SYSTEM, unit_id, "customer_education", "call_centre")
    panel = unit_panel(conn, unit_id)
    assert panel.unit is not None and panel.unit.place == "untracked" and panel.unit.state == "installed"
    assert [t.kind for t in panel.open_tickets] == ["repair", "customer_education"]  # by due time
    assert panel.open_tickets[0].breached and not panel.open_tickets[1].breached
    html = _render(panel)
    assert f"#{late} repair" in html and "SLA breached" in html and "location not tracked yet" in html


def test_an_installation_done_puts_the_agents_unit_at_the_customer(
    settings: Settings, conn: psycopg.Connection
) -> None:
    a = agent(conn, settings.database_url, "anna", "A1")
    _, _, sold_unit = sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina")
    lamp_product(conn)
    (new_unit,) = received(conn, settings.secret_key, "LMP000100")
    inventory.move_unit(conn, TEST_ACTOR, new_unit, "assign_to_agent", agent_id=a.id)
    customer = conn.execute("select customer_id from contracts where unit_id = %s", (sold_unit,)).fetchone()[0]  # type: ignore[index]
    conn.execute("update contracts set unit_id = %s where unit_id = %s", (new_unit, sold_unit))  # a swapped kit
    ticket = service.open_ticket(conn, SYSTEM, new_unit, "installation", "call_centre", agent_id=a.id)
    service.close(conn, TEST_ACTOR, ticket, Closing(outcome="done", note="installed"), None)
    panel = unit_panel(conn, new_unit)
    assert panel.unit is not None and (panel.unit.state, panel.unit.place, panel.unit.customer_id) == (
        "installed",
        "customer",
        customer,
    )
    assert [m.state_after for m in panel.moves] == ["installed", "with_agent", "in_stock"]
    assert "at customer Amina" in _render(panel)
