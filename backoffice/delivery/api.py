"""Tokens and their deliveries for the call centre: list, resend; the development SMS gateway's log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException

from backoffice.credit import repository as credit_repo
from backoffice.delivery import repository
from backoffice.deps import DbConn

router = APIRouter(prefix="/api", tags=["delivery"])


@router.get("/sms")
def sms_log(conn: DbConn, to: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Messages the development SMS gateway has 'sent', newest first."""
    return [asdict(m) for m in repository.recent_sms(conn, min(max(limit, 1), 1000), to)]


@router.get("/contracts/{account_number}/tokens")
def contract_tokens(account_number: str, conn: DbConn) -> list[dict[str, Any]]:
    contract_id = credit_repo.contract_id_by_account(conn, account_number)
    if contract_id is None:
        raise HTTPException(404, f"no contract with account number {account_number!r}")
    return [asdict(t) for t in credit_repo.tokens_of_contract(conn, contract_id)]


@router.post("/tokens/{token_id}/resend")
def resend(token_id: int, conn: DbConn) -> dict[str, Any]:
    """Send a token again (SMS and unit command), e.g. when a customer lost the message."""
    with conn.transaction():  # committed before the answer: the dispatcher may look at once
        queued = repository.requeue_token(conn, token_id)
    if not queued:
        raise HTTPException(404, f"no token {token_id} with deliveries to repeat")
    return {"token_id": token_id, "deliveries_queued": queued}
