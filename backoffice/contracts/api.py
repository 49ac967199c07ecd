"""JSON API of contracts: end one (returned, repossessed, written off)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from backoffice.contracts import service
from backoffice.deps import DbConn

router = APIRouter(prefix="/api", tags=["contracts"])


class ContractEnd(BaseModel):
    state: Literal["returned", "repossessed", "written_off"]
    actor: str = Field(min_length=1, description="who decided (kept in the audit trail)")
    note: str | None = None


@router.post("/contracts/{account_number}/state")
def end_contract(account_number: str, body: ContractEnd, conn: DbConn) -> dict[str, Any]:
    """End an active contract: the customer returned the unit, it was repossessed, or the debt written off.
    Payments that still arrive are kept and booked, but buy no more light."""
    try:
        with conn.transaction():
            old = service.end_contract(conn, account_number, body.state, body.actor, body.note)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except ValueError as err:
        raise HTTPException(409, str(err)) from None
    return {"account_number": account_number, "from": old, "state": body.state}
