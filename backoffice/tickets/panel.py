"""What the unit page shows of field operations (``unit_panel``; its partial template is
``templates/panels/tickets.html``, which renders ``panel``): where the unit is in its lifecycle, its
open and recent tickets, and its last stock moves."""

from __future__ import annotations

import psycopg

from backoffice.inventory import repository as inventory
from backoffice.tickets import repository
from backoffice.tickets.schemas import UnitPanel


def unit_panel(conn: psycopg.Connection, unit_id: int) -> UnitPanel:
    """Everything staff who may see the unit page may see (not for a field agent: it is unscoped)."""
    tickets = repository.search(conn, None, unit_id=unit_id, limit=20)
    return UnitPanel(
        unit=inventory.unit_where(conn, unit_id),
        open_tickets=[t for t in tickets if t.state in ("open", "assigned")],
        recent_tickets=[t for t in tickets if t.state not in ("open", "assigned")][:5],
        moves=inventory.moves_of_unit(conn, unit_id, 10),
    )
