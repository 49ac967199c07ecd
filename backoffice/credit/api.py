"""A contract's tokens for the call centre: list them, send one again."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from backoffice.credit import repository, service
from backoffice.deps import DbConn, RowId
from backoffice.registry import repository as registry
from backoffice.staff.guard import Allow, CurrentStaff

# Token codes are light itself: those who talk to customers and finance see them; only the call
# centre sends one again.
router = APIRouter(prefix="/api", tags=["tokens"], dependencies=[Depends(Allow("call_centre", "finance"))])
resend_router = APIRouter(prefix="/api", tags=["tokens"], dependencies=[Depends(Allow("call_centre"))])


@router.get("/contracts/{account_number}/tokens")
def contract_tokens(account_number: str, conn: DbConn) -> list[dict[str, Any]]:
    contract = registry.contract_by_account(conn, account_number)
    if contract is None:
        raise HTTPException(404, f"no contract with account number {account_number!r}")
    return [asdict(t) for t in repository.tokens_of_contract(conn, contract.id)]


@resend_router.post("/tokens/{token_id}/resend")
def resend(token_id: RowId, conn: DbConn, staff: CurrentStaff) -> dict[str, Any]:
    """Send a token again (SMS and unit command), e.g. when a customer lost the message."""
    with conn.transaction():  # committed before the answer: the dispatcher may look at once
        queued = service.resend_token(conn, token_id, staff.actor)
    if not queued:
        raise HTTPException(404, f"no token {token_id} with deliveries to repeat")
    return {"token_id": token_id, "deliveries_queued": queued}
