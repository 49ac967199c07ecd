"""``/api/v1`` of the unit page: its data, and the call centre's actions (goodwill days, resend)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request

from backoffice.callcentre import service
from backoffice.callcentre.schemas import GoodwillGranted, GoodwillRequest, Resent, UnitPage
from backoffice.deps import DbConn, ReadConn, RowId, SettingsDep
from backoffice.staff.guard import Allow, CurrentStaff

router = APIRouter(prefix="/api/v1", tags=["unit page"], dependencies=[Depends(Allow("call_centre", "finance"))])
act_router = APIRouter(prefix="/api/v1", tags=["unit page"], dependencies=[Depends(Allow("call_centre"))])


@router.get("/units/{serial}")
def unit_page(serial: str, request: Request, conn: ReadConn, staff: CurrentStaff) -> UnitPage:
    """Everything the unit page shows (``sms`` is null for roles that may not read the SMS log), with
    ``answer``: the first screen's state, reason and actions (docs/unit_page.md)."""
    page = service.load_unit_page(conn, serial, with_sms=staff.holds(service.SMS_READERS),
                                  alerts=getattr(request.app.state, "unit_alerts", None))  # fmt: skip
    if page is None:
        raise HTTPException(404, f"no unit with serial {serial!r}; find it with /api/v1/search?q=")
    return page


@act_router.post("/units/{serial}/goodwill", status_code=201)
def grant_goodwill(
    serial: str, grant: GoodwillRequest, conn: DbConn, settings: SettingsDep, staff: CurrentStaff
) -> GoodwillGranted:
    """Free days of light as a token (SMS and unit command), at most PAYGO_GOODWILL_MAX_DAYS at once
    (PAYGO_GOODWILL_ADMIN_MAX_DAYS for administrators); audited. 422 with the reason when refused."""
    try:
        with conn.transaction():
            return service.grant_goodwill(conn, settings, serial, grant.days, grant.reason, staff.actor, staff.roles)
    except service.ActionRefused as err:
        raise HTTPException(422, str(err)) from None
    except LookupError as err:
        raise HTTPException(404, str(err)) from None


@act_router.post("/units/{serial}/tokens/{token_id}/resend")
def resend(serial: str, token_id: RowId, conn: DbConn, staff: CurrentStaff) -> Resent:
    """Send one of the unit's tokens again (SMS and unit command); audited."""
    with conn.transaction():
        try:
            queued = service.resend_token(conn, serial, token_id, staff.actor)
        except LookupError as err:
            raise HTTPException(404, str(err)) from None
    return Resent(token_id=token_id, deliveries_queued=queued)
