"""JSON API of the registry: units and the platform's counters."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from backoffice.deps import DbConn
from backoffice.registry import repository

router = APIRouter(prefix="/api", tags=["registry"])


@router.get("/units")
def list_units(conn: DbConn, q: str = "", limit: int = 100) -> list[dict[str, Any]]:
    return [asdict(u) for u in repository.list_units(conn, q.strip(), min(max(limit, 1), 1000))]


@router.get("/units/{serial}")
def get_unit(serial: str, conn: DbConn) -> dict[str, Any]:
    unit = repository.get_unit(conn, serial)
    if unit is None:
        raise HTTPException(404, f"no unit with serial {serial!r}; search by name, phone or account at /api/units?q=")
    return asdict(unit)


@router.get("/stats")
def stats(conn: DbConn) -> dict[str, int]:
    return repository.counts(conn)


class ContractEnd(BaseModel):
    state: Literal["returned", "repossessed", "written_off"]
    actor: str = Field(min_length=1, description="who decided (kept in the audit trail)")
    note: str | None = None


@router.post("/contracts/{account_number}/state")
def end_contract(account_number: str, body: ContractEnd, conn: DbConn) -> dict[str, Any]:
    """End an active contract: the customer returned the unit, it was repossessed, or the debt written off.
    Payments that still arrive are kept and booked, but buy no more light."""
    from backoffice.payments.repository import audit

    try:
        with conn.transaction():
            old = repository.set_contract_state(conn, account_number, body.state, ("active",))
            audit(conn, body.actor, f"contract-{body.state}", None, {"account": account_number, "note": body.note})
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except ValueError as err:
        raise HTTPException(409, str(err)) from None
    return {"account_number": account_number, "from": old, "state": body.state}
