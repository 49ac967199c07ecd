"""One fleet-health alert on a page (``/fleet-health/alerts/{id}``): what the rule saw, and the call
centre's acknowledgement (the same service as ``POST /api/v1/fleet-health/alerts/{id}/acknowledge``)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice.deps import DbConn, RowId
from backoffice.health import service
from backoffice.health.api import READERS
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.templating import templates

reading = APIRouter(tags=["pages"], dependencies=[Depends(Allow(*READERS))])
# Who may acknowledge: as the API (the call centre; technician alerts reach field agents as tickets).
acting = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre"))])


def _page(request: Request, conn: DbConn, alert_id: int, done: str | None, error: str | None = None,
          status: int = 200) -> Response:  # fmt: skip
    alert = service.alert(conn, alert_id)
    if alert is None and error is None:
        error, status = f"no alert {alert_id}", 404
    return templates.TemplateResponse(request, "alert.html", {"alert": alert, "done": done, "error": error},
                                      status_code=status)  # fmt: skip


@reading.get("/fleet-health/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(
    request: Request, alert_id: RowId, conn: DbConn, done: Annotated[str, Query(max_length=300)] = ""
) -> Response:
    return _page(request, conn, alert_id, done or None)


@acting.post("/fleet-health/alerts/{alert_id}/acknowledge")
def acknowledge_from_page(request: Request, alert_id: RowId, conn: DbConn, staff: CurrentStaff) -> Response:
    try:
        with conn.transaction():
            before = service.alert(conn, alert_id)
            alert = service.acknowledge(conn, staff.actor, alert_id)
    except service.NotFound as err:
        return _page(request, conn, alert_id, None, str(err), 404)
    if before is not None and before.acknowledged_at is not None:
        done = f"Alert #{alert_id} was already acknowledged by {alert.acknowledged_by}."
    else:
        done = f"Alert #{alert_id} ({alert.kind.replace('_', ' ')} on {alert.serial}) acknowledged by {staff.name}."
    return RedirectResponse(f"/fleet-health/alerts/{alert_id}?{urlencode({'done': done})}", status_code=303)
