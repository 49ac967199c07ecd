"""JSON API of contracts: end one (returned, repossessed, written off)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from backoffice.contracts import service
from backoffice.deps import DbConn
from backoffice.staff.guard import Allow, CurrentStaff

router = APIRouter(prefix="/api", tags=["contracts"], dependencies=[Depends(Allow("finance"))])


class ContractEnd(BaseModel):
    state: Literal["returned", "repossessed", "written_off"]
    note: str | None = Field(default=None, max_length=2000, description="why (kept in the audit trail)")


@router.post("/contracts/{account_number}/state")
def end_contract(account_number: str, body: ContractEnd, conn: DbConn, staff: CurrentStaff) -> dict[str, Any]:
    """End an active contract: the customer returned the unit, it was repossessed, or the debt written off.
    Payments that still arrive are kept, but buy no more light: they wait for finance (``ended-contract``)."""
    try:
        with conn.transaction():
            old = service.end_contract(conn, account_number, body.state, staff.actor, body.note)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except ValueError as err:
        raise HTTPException(409, str(err)) from None
    return {"account_number": account_number, "from": old, "state": body.state}
