"""Call-centre pages of the registry: find a unit by serial, customer name, phone or account number."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from backoffice import clock
from backoffice.deps import DbConn
from backoffice.registry import repository
from backoffice.staff.guard import Allow
from backoffice.templating import templates

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance", "viewer"))])


@router.get("/", response_class=HTMLResponse)
def units_page(request: Request, conn: DbConn, q: str = "") -> HTMLResponse:
    units = repository.list_units(conn, q.strip(), 200)
    return templates.TemplateResponse(
        request,
        "units.html",
        {"units": units, "q": q, "counts": repository.counts(conn), "now": clock.utc_now()},
    )
