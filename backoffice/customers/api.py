"""``/api/v1`` of customers: the search box, a customer's details and numbers, notes of calls."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query

from backoffice.customers import service
from backoffice.customers.schemas import CallNote, Customer, CustomerFields, NewCallNote, NewCustomer, SearchHit
from backoffice.customers.search import search
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.staff.guard import Allow, CurrentStaff

# The search shows names, numbers and national ids: not for viewers (investors).
search_router = APIRouter(prefix="/api/v1", tags=["customers"],
                          dependencies=[Depends(Allow("call_centre", "finance"))])  # fmt: skip
router = APIRouter(prefix="/api/v1", tags=["customers"], dependencies=[Depends(Allow("call_centre", "finance"))])
edit_router = APIRouter(prefix="/api/v1", tags=["customers"], dependencies=[Depends(Allow("call_centre"))])


@search_router.get("/search")
def find(
    conn: DbConn, settings: SettingsDep, q: Annotated[str, Query(max_length=200)],
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[SearchHit]:  # fmt: skip
    """Customers and units by phone (typed any way), name (misspelt too), serial, account or national id,
    best first; each hit names the field that matched."""
    return search(conn, q, limit, regions=settings.search_phone_regions)


@router.get("/customers/{customer_id}")
def get_customer(customer_id: RowId, conn: DbConn) -> Customer:
    customer = service.get_customer(conn, customer_id)
    if customer is None:
        raise HTTPException(404, f"no customer {customer_id}")
    return customer


def _refused(err: Exception) -> HTTPException:
    if isinstance(err, psycopg.errors.UniqueViolation):  # two requests gave one national id at once
        return HTTPException(409, "that national id is already another customer's")
    return HTTPException(422, str(err))


@edit_router.post("/customers", status_code=201)
def create_customer(new: NewCustomer, conn: DbConn, settings: SettingsDep, staff: CurrentStaff) -> Customer:
    try:
        with conn.transaction():
            return service.create_customer(conn, new, settings.default_phone_region, staff.actor)
    except (service.CustomerRefused, psycopg.errors.UniqueViolation) as err:
        raise _refused(err) from None


@edit_router.patch("/customers/{customer_id}")
def update_customer(
    customer_id: RowId, change: CustomerFields, conn: DbConn, settings: SettingsDep, staff: CurrentStaff
) -> Customer:
    """Change the fields sent (``phones``: the whole list, the first for SMS); audited."""
    try:
        with conn.transaction():
            updated = service.update_customer(conn, customer_id, change, settings.default_phone_region, staff.actor)
    except (service.CustomerRefused, psycopg.errors.UniqueViolation) as err:
        raise _refused(err) from None
    if updated is None:
        raise HTTPException(404, f"no customer {customer_id}")
    return updated


@router.get("/customers/{customer_id}/notes")
def list_notes(customer_id: RowId, conn: DbConn, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[CallNote]:
    if service.get_customer(conn, customer_id) is None:
        raise HTTPException(404, f"no customer {customer_id}")
    return service.notes(conn, customer_id, limit)


@edit_router.post("/customers/{customer_id}/notes", status_code=201)
def add_note(customer_id: RowId, note: NewCallNote, conn: DbConn, staff: CurrentStaff) -> CallNote:
    """A note of a call, by the caller's login (never a field of the request); audited."""
    try:
        with conn.transaction():
            return service.add_note(conn, customer_id, note, staff.actor)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
