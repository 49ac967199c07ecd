"""JSON API of the inventory (``/api/v1/inventory``): stock per location, serial search, a unit's moves;
moving units through their lifecycle, receiving a shipment from a CSV file, receiving and moving parts."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query

from backoffice.deps import DbConn, RawBody, SettingsDep
from backoffice.inventory import receipt, repository, service
from backoffice.inventory.schemas import (
    KeySheet,
    Location,
    LocationStock,
    MoveRequest,
    PartCount,
    PartsRequest,
    ReceiptResult,
    RekeyRequest,
    UnitDetail,
    UnitWhere,
)
from backoffice.staff.guard import Allow, CurrentStaff

router = APIRouter(
    prefix="/api/v1/inventory", tags=["inventory"], dependencies=[Depends(Allow("call_centre", "finance", "viewer"))]
)
moves = APIRouter(prefix="/api/v1/inventory", tags=["inventory"], dependencies=[Depends(Allow("call_centre"))])

RowIdQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


@router.get("/locations", response_model=list[Location])
def locations(conn: DbConn) -> list[Location]:
    return repository.locations(conn)


@router.get("/stock", response_model=list[LocationStock])
def stock(conn: DbConn, location_id: RowIdQuery = None) -> list[LocationStock]:
    """Units by lifecycle state and parts by SKU, per warehouse and per agent."""
    return repository.stock(conn, location_id)


@router.get("/units", response_model=list[UnitWhere])
def search_units(
    conn: DbConn,
    q: Annotated[str, Query(max_length=64)] = "",
    location_id: RowIdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[UnitWhere]:
    """Units whose serial contains ``q``, with their state and where they are."""
    return repository.search_units(conn, q.strip(), location_id, limit)


def _unit_id(conn: psycopg.Connection, serial: str) -> int:
    unit_id = repository.unit_id_of(conn, serial)
    if unit_id is None:
        raise HTTPException(404, f"no unit with serial {serial!r}; search at /api/v1/inventory/units?q=")
    return unit_id


@router.get("/units/{serial}", response_model=UnitDetail)
def unit_detail(serial: str, conn: DbConn) -> UnitDetail:
    unit_id = _unit_id(conn, serial)
    unit = repository.unit_where(conn, unit_id)
    assert unit is not None
    return UnitDetail(unit=unit, moves=repository.moves_of_unit(conn, unit_id))


@moves.post("/units/{serial}/moves", response_model=UnitWhere)
def move_unit(serial: str, body: MoveRequest, conn: DbConn, staff: CurrentStaff) -> UnitWhere:
    """One step of the unit's lifecycle; 409 says why a move is refused (another move got there first)."""
    try:
        with conn.transaction():
            return service.move_unit(
                conn,
                staff.actor,
                _unit_id(conn, serial),
                body.action,
                location_id=body.location_id,
                agent_id=body.agent_id,
                customer_id=body.customer_id,
                note=body.note,
            )
    except service.MoveRefused as err:
        raise HTTPException(409, str(err)) from None


# Re-keying hands out a unit's new secret (for the provisioning tool at the depot): administrators only.
keys = APIRouter(prefix="/api/v1/inventory", tags=["inventory"], dependencies=[Depends(Allow("admin"))])


@keys.post("/units/{serial}/rekey", response_model=KeySheet)
def rekey(serial: str, body: RekeyRequest, conn: DbConn, settings: SettingsDep, staff: CurrentStaff) -> KeySheet:
    """A new OpenPAYGO secret and starting code for a unit at the depot (in stock or refurbishing), before it
    is sold again; the answer is the sheet the provisioning tool writes into the unit, shown this once
    (docs/unit_keys.md). 409 says why not (a customer has the unit, it is not at the depot)."""
    try:
        with conn.transaction():
            return service.rekey_unit(conn, staff.actor, _unit_id(conn, serial), settings.secret_key, body.note)
    except service.MoveRefused as err:
        raise HTTPException(409, str(err)) from None


@moves.post("/receipts", response_model=ReceiptResult, status_code=201)
def receive(
    body: RawBody,
    conn: DbConn,
    settings: SettingsDep,
    staff: CurrentStaff,
    location_id: Annotated[int, Query(ge=1, le=2**63 - 1)],
) -> ReceiptResult:
    """A shipment of units, as the body: CSV with the header ``serial,product``. A bad line is named by its
    number (422, ``detail.errors``) and nothing is written."""
    try:
        with conn.transaction():
            return receipt.receive(conn, staff.actor, settings.secret_key, location_id, body)
    except receipt.ReceiptProblems as err:
        raise HTTPException(422, {"message": "nothing was received", "errors": err.errors}) from None
    except psycopg.errors.UniqueViolation:
        raise HTTPException(409, "some of these serials were received meanwhile: nothing was received") from None


@moves.post("/parts", response_model=list[PartCount])
def parts(body: PartsRequest, conn: DbConn, staff: CurrentStaff) -> list[PartCount]:
    """Parts received at a location, or moved from one to another (an agent takes batteries out)."""
    try:
        with conn.transaction():
            service.add_parts(
                conn, staff.actor, body.sku, body.quantity, body.to_location_id, body.from_location_id, body.name
            )
    except service.MoveRefused as err:
        raise HTTPException(409, str(err)) from None
    return repository.parts_at(conn, body.to_location_id)
