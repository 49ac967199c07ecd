"""API tokens for integrations and the audit trail, for administrators."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from backoffice.audit import repository as audit
from backoffice.deps import DbConn, RowId
from backoffice.staff import repository, service
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.staff.schemas import Role

router = APIRouter(prefix="/api", tags=["staff"], dependencies=[Depends(Allow("admin"))])


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="the integration the token is for")  # fmt: skip
    roles: list[Role] = Field(min_length=1)


class IssuedToken(BaseModel):
    id: int
    token: str = Field(description="shown once: only its hash is kept")


@router.get("/tokens")
def list_tokens(conn: DbConn) -> list[dict[str, Any]]:
    return [asdict(t) for t in repository.list_tokens(conn)]


@router.post("/tokens", status_code=201)
def create_token(body: NewToken, conn: DbConn, staff: CurrentStaff) -> IssuedToken:
    try:
        with conn.transaction():
            # The new token answers to the same person as its maker (a token made by a token included).
            if staff.owner_id is None:
                raise service.StaffError("this token answers to no one: ask an administrator for a new one")
            token_id, token = service.create_token(conn, body.name, list(body.roles), staff.actor, staff.owner_id)
    except service.StaffError as err:
        raise HTTPException(422, str(err)) from None
    return IssuedToken(id=token_id, token=token)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: RowId, conn: DbConn, staff: CurrentStaff) -> dict[str, Any]:
    try:
        with conn.transaction():
            service.revoke_token(conn, token_id, staff.actor)
    except service.StaffError as err:
        raise HTTPException(404, str(err)) from None
    return {"id": token_id, "revoked": True}


@router.get("/audit")
def audit_trail(
    conn: DbConn, actor: str | None = None, entity: str | None = None, entity_id: str | None = None,
    before: int | None = None, limit: int = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    rows = audit.browse(conn, actor=actor, entity=entity, entity_id=entity_id, before_id=before,
                        limit=min(max(limit, 1), 1000))  # fmt: skip
    return [asdict(r) for r in rows]
