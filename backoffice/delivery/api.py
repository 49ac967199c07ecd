"""The development SMS gateway's log (what was 'sent' to whom)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends

from backoffice.delivery import repository
from backoffice.deps import DbConn
from backoffice.staff.guard import Allow

# The log holds live tokens and phone numbers: the call centre (which resends them) only.
router = APIRouter(prefix="/api", tags=["delivery"], dependencies=[Depends(Allow("call_centre"))])


@router.get("/sms")
def sms_log(conn: DbConn, to: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Messages the development SMS gateway has 'sent', newest first."""
    return [asdict(m) for m in repository.recent_sms(conn, min(max(limit, 1), 1000), to)]
