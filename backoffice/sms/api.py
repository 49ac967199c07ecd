"""A unit's SMS log over the API (the unit page shows the same through ``service.unit_panel``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from backoffice.deps import DbConn
from backoffice.sms import repository, service
from backoffice.sms.schemas import SmsLog
from backoffice.staff.guard import Allow

# The log holds live tokens and phone numbers: the call centre (which resends them) only, as /api/sms.
router = APIRouter(prefix="/api/v1", tags=["sms"], dependencies=[Depends(Allow("call_centre"))])


@router.get("/units/{serial}/sms", response_model=SmsLog)
def unit_sms(
    serial: Annotated[str, Path(min_length=1, max_length=64)], conn: DbConn,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SmsLog:  # fmt: skip
    """The SMS sent (or queued) to the unit's customers, newest first."""
    unit_id = repository.unit_id_of(conn, serial)
    if unit_id is None:
        raise HTTPException(404, f"no unit with serial {serial!r}")
    return service.unit_panel(conn, unit_id, limit)
