"""The inventory page: stock per warehouse and per agent (units by state, parts by SKU), serial search
with each unit's place and moves; forms to receive a shipment (CSV), move a unit, and move parts."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import psycopg
from fastapi import APIRouter, Depends, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice.deps import DbConn, SettingsDep
from backoffice.inventory import receipt, repository, service
from backoffice.inventory.schemas import InventoryList, MoveAction
from backoffice.listing import listed
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.templating import templates

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance", "viewer"))])
forms = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre"))])

OptionalId = Annotated[int | None, Form(ge=1, le=2**63 - 1)]
MAX_RECEIPT_BYTES = 2 * 1024 * 1024


def _refused(request: Request, title: str, message: str, status: int) -> Response:
    return templates.TemplateResponse(request, "refused.html", {"title": title, "message": message}, status_code=status)


@router.get("/inventory", response_class=HTMLResponse)
def inventory_page(
    request: Request,
    conn: DbConn,
    query: Annotated[InventoryList, Depends(listed(InventoryList))],
    done: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9 ._-]{1,80}$")] = None,
) -> Response:
    page = repository.units_page(conn, query) if query.asked else None
    units = page.rows if page else []
    one = len(units) == 1 and page is not None and page.total == 1
    moves = repository.moves_of_unit(conn, units[0].unit_id, 20) if one else repository.recent_moves(conn)
    return templates.TemplateResponse(
        request,
        "inventory.html",
        {
            "stock": repository.stock(conn),
            "q": query.q.strip(),
            "f": query,
            "page": page,
            "units": units,
            "moves": moves,
            "done": done,
            "locations": repository.locations(conn),
            "errors": [],
        },
    )


@forms.post("/inventory/receipts", response_class=HTMLResponse)
async def receive(
    request: Request,
    conn: DbConn,
    settings: SettingsDep,
    staff: CurrentStaff,
    location_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
    file: UploadFile,
) -> Response:
    data = await file.read(MAX_RECEIPT_BYTES + 1)
    name = (file.filename or "receipt.csv")[-80:]
    try:
        if len(data) > MAX_RECEIPT_BYTES:
            raise receipt.ReceiptProblems([f"{name}: larger than {MAX_RECEIPT_BYTES:,} bytes; split the shipment"])
        with conn.transaction():
            result = receipt.receive(conn, staff.actor, settings.secret_key, location_id, data, name)
    except receipt.ReceiptProblems as err:
        return templates.TemplateResponse(
            request,
            "inventory.html",
            {
                "stock": repository.stock(conn),
                "q": "",
                "units": [],
                "moves": [],
                "done": None,
                "locations": repository.locations(conn),
                "errors": err.errors,
            },
            status_code=422,
        )
    except psycopg.errors.UniqueViolation:
        return _refused(request, "Nothing received", "Some of these serials were received meanwhile.", 409)
    return RedirectResponse(f"/inventory?done=received+{result.received}+units", status_code=303)


@forms.post("/inventory/moves", response_class=HTMLResponse)
def move(
    request: Request,
    conn: DbConn,
    staff: CurrentStaff,
    serial: Annotated[str, Form(max_length=64)],
    action: Annotated[MoveAction, Form()],
    agent_id: OptionalId = None,
    location_id: OptionalId = None,
    customer_id: OptionalId = None,
    account_number: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """``account_number``: for an install, the sale's contract names the customer (people never type an
    internal customer id; ``customer_id`` stays for older clients)."""
    # Everything inside the one transaction, committed before the answer (a query before it would open
    # a transaction that is committed only after the redirect has been sent).
    try:
        with conn.transaction():
            unit_id = repository.unit_id_of(conn, serial.strip())
            if unit_id is None:
                raise service.NotFound(f"No unit with serial {serial[:64]!r}.")
            if account_number.strip():
                customer_id = repository.customer_of_contract(conn, account_number.strip())
                if customer_id is None:
                    raise service.NotFound(f"No contract with account number {account_number.strip()[:40]!r}.")
            service.move_unit(
                conn,
                staff.actor,
                unit_id,
                action,
                location_id=location_id,
                agent_id=agent_id,
                customer_id=customer_id,
                note=note or None,
            )
    except service.NotFound as err:
        return _refused(request, "Not found", str(err), 404)
    except service.MoveRefused as err:
        return _refused(request, "Move refused", str(err), 409)
    return RedirectResponse(f"/inventory?q={quote(serial.strip())}&done={action}", status_code=303)


@forms.post("/inventory/parts", response_class=HTMLResponse)
def parts(
    request: Request,
    conn: DbConn,
    staff: CurrentStaff,
    sku: Annotated[str, Form(pattern=r"^[A-Za-z0-9._-]{1,40}$")],
    quantity: Annotated[int, Form(ge=1, le=1_000_000)],
    to_location_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
    from_location_id: OptionalId = None,
    name: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    try:
        with conn.transaction():
            service.add_parts(conn, staff.actor, sku, quantity, to_location_id, from_location_id, name or None)
    except service.MoveRefused as err:
        return _refused(request, "Parts not moved", str(err), 409)
    return RedirectResponse(f"/inventory?done=moved+{quantity}+{sku}", status_code=303)
