"""Fleet health over REST (``/api/v1/fleet-health``) and the alerts page (``/fleet-health``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from backoffice.deps import DbConn, ReadConn, RowId
from backoffice.health import service
from backoffice.health.rules import KINDS
from backoffice.health.schemas import Alert, OutreachItem, UnitPanel
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
def alerts_page(request: Request, conn: ReadConn, kind: Kind = None) -> HTMLResponse:
    alerts = service.open_alerts(conn, kind=kind)
    counts = dict.fromkeys(KINDS, 0)
    for a in service.open_alerts(conn):
        counts[a.kind] += 1
    queue = [OutreachItem(**r) for r in service.repository.outreach(conn, 100)]
    return templates.TemplateResponse(request, "fleet_health.html",
                                      {"alerts": alerts, "counts": counts, "kind": kind, "queue": queue})  # fmt: skip
