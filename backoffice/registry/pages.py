"""Call-centre pages of the registry: the units list (search by serial, customer name, phone or account
number; filters, order and pages by backoffice/listing.py)."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from backoffice import clock
from backoffice.deps import DbConn
from backoffice.listing import listed
from backoffice.registry import repository
from backoffice.registry.schemas import UnitList, UnitState
from backoffice.staff.guard import Allow
from backoffice.templating import templates

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance", "viewer"))])


@router.get("/", response_class=HTMLResponse)
def units_page(request: Request, conn: DbConn, query: Annotated[UnitList, Depends(listed(UnitList))]) -> HTMLResponse:
    page = repository.units_page(conn, query)
    return templates.TemplateResponse(
        request,
        "units.html",
        {"page": page, "units": page.rows, "q": query.q, "f": query, "states": get_args(UnitState),
         "counts": repository.counts(conn), "now": clock.utc_now()},
    )  # fmt: skip
