"""Fleet health over REST (``/api/v1/fleet-health``) and the alerts page (``/fleet-health``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from backoffice.deps import DbConn, ReadConn, RowId
from backoffice.health import service
from backoffice.health.rules import KINDS
from backoffice.health.schemas import Alert, AlertList, OutreachItem, UnitPanel
from backoffice.listing import listed
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.staff.schemas import Role
from backoffice.templating import templates

# Field agents get technician alerts as tickets, not the fleet-wide lists (customers not theirs).
READERS: tuple[Role, ...] = ("call_centre", "viewer")
router = APIRouter(prefix="/api/v1/fleet-health", tags=["fleet health"],
                   dependencies=[Depends(Allow(*READERS))])  # fmt: skip
acting = APIRouter(prefix="/api/v1/fleet-health", tags=["fleet health"],
                   dependencies=[Depends(Allow("call_centre"))])  # fmt: skip
pages = APIRouter(tags=["pages"], dependencies=[Depends(Allow(*READERS))])

OUTREACH_SHOWN = 100  # the top of the queue on the page; the whole queue at /api/v1/fleet-health/outreach
Kind = Annotated[str | None, Query(pattern="^(" + "|".join(KINDS) + ")$")]


@router.get("/alerts", response_model=list[Alert])
def list_alerts(conn: ReadConn, kind: Kind = None) -> list[Alert]:
    """Open alerts, newest first, with the evidence each rule saw."""
    return service.open_alerts(conn, kind=kind)


@router.get("/outreach", response_model=list[OutreachItem])
def outreach(conn: ReadConn) -> list[OutreachItem]:
    """The call centre's queue, the highest priority first."""
    return [OutreachItem(**r) for r in service.repository.outreach(conn)]


@router.get("/units/{unit_id}", response_model=UnitPanel)
def unit_health(unit_id: RowId, conn: ReadConn) -> UnitPanel:
    """A unit's open alerts, state-of-health series and collections class."""
    return service.unit_panel(conn, unit_id)


@acting.post("/alerts/{alert_id}/acknowledge", response_model=Alert)
def acknowledge(alert_id: RowId, conn: DbConn, staff: CurrentStaff) -> Alert:
    """Staff have seen the alert (audited); it resolves by itself when its condition clears."""
    with conn.transaction():
        try:
            return service.acknowledge(conn, staff.actor, alert_id)
        except service.NotFound as err:
            raise HTTPException(404, str(err)) from None


@pages.get("/fleet-health", response_class=HTMLResponse)
def alerts_page(
    request: Request, conn: ReadConn, query: Annotated[AlertList, Depends(listed(AlertList))]
) -> HTMLResponse:
    page = service.open_alerts_page(conn, query)
    counts = dict.fromkeys(KINDS, 0) | service.repository.open_alert_counts(conn)
    queue = [OutreachItem(**r) for r in service.repository.outreach(conn, OUTREACH_SHOWN)]
    return templates.TemplateResponse(
        request,
        "fleet_health.html",
        {"page": page, "alerts": page.rows, "counts": counts, "kind": query.kind, "queue": queue,
         "queue_total": service.repository.outreach_count(conn)},
    )  # fmt: skip
