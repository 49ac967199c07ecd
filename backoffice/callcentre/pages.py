"""The unit page (``/units/{serial}``), where the call centre works while a customer is on the phone,
and its three actions (resend a token, goodwill days, a call note), each a form post with the CSRF token
that comes back to the page. Panels of other domains (``app.state.unit_panels``) render below."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice import clock
from backoffice.callcentre import service
from backoffice.config import Settings
from backoffice.customers.schemas import LANGUAGES
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.staff.schemas import Staff
from backoffice.templating import UnitPanel, templates

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance"))])
act_router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre"))])


def _page(
    request: Request, conn: DbConn, staff: Staff, settings: Settings, serial: str, *, done: str | None = None,
    refused: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    page = service.load_unit_page(conn, serial, with_sms=staff.holds(service.SMS_READERS))
    if page is None:
        raise HTTPException(404, f"no unit with serial {serial!r}; use the search box above")
    week, month = service.page_charts(page)
    panels: list[UnitPanel] = getattr(request.app.state, "unit_panels", [])
    context = {
        "p": page, "week": week, "month": month, "done": done, "refused": refused, "now": clock.utc_now(),
        "languages": LANGUAGES, "acts": staff.holds(frozenset({"call_centre"})),
        "goodwill_max": service.goodwill_limit(settings, staff.roles),
        # A panel with nothing to say for this unit (its load gives None) is left out.
        "panels": [(title, template, value) for title, template, value in
                   ((p.title, p.template, p.load(conn, page.unit.id)) for p in panels) if value is not None],
    }  # fmt: skip
    return templates.TemplateResponse(request, "unit.html", context, status_code=status)


@router.get("/units/{serial}", response_class=HTMLResponse)
def unit_page(
    serial: str, request: Request, conn: DbConn, staff: CurrentStaff, settings: SettingsDep, done: str | None = None
) -> Response:
    messages = {"resent": "The token is on its way again, by SMS and to the unit.",
                "goodwill": "Goodwill days granted: the token is on its way by SMS and to the unit.",
                "noted": "Call note saved."}  # fmt: skip
    return _page(request, conn, staff, settings, serial, done=messages.get(done or ""))


@act_router.post("/units/{serial}/tokens/{token_id}/resend")
def resend(serial: str, token_id: RowId, conn: DbConn, staff: CurrentStaff) -> Response:
    with conn.transaction():  # committed before the answer: the dispatcher may look at once
        try:
            service.resend_token(conn, serial, token_id, staff.actor)
        except LookupError as err:
            raise HTTPException(404, str(err)) from None
    return RedirectResponse(f"/units/{serial}?done=resent#sms", status_code=303)


@act_router.post("/units/{serial}/goodwill")
def goodwill(
    serial: str, request: Request, conn: DbConn, staff: CurrentStaff, settings: SettingsDep,
    days: Annotated[int, Form(ge=1, le=995)], reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:  # fmt: skip
    if not reason.strip():
        return _page(request, conn, staff, settings, serial, refused="Goodwill days need a reason.", status=422)
    try:
        with conn.transaction():
            service.grant_goodwill(conn, settings, serial, days, reason.strip(), staff.actor, staff.roles)
    except service.ActionRefused as err:
        return _page(request, conn, staff, settings, serial, refused=str(err), status=422)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    return RedirectResponse(f"/units/{serial}?done=goodwill#tokens", status_code=303)


@act_router.post("/units/{serial}/notes")
def note(
    serial: str, request: Request, conn: DbConn, staff: CurrentStaff, settings: SettingsDep,
    body: Annotated[str, Form(max_length=2000)],
) -> Response:  # fmt: skip
    if not body.strip():
        return _page(request, conn, staff, settings, serial, refused="A call note needs some text.", status=422)
    with conn.transaction():
        try:
            service.add_note(conn, serial, body.strip(), staff.actor)
        except LookupError as err:
            raise HTTPException(404, str(err)) from None
    return RedirectResponse(f"/units/{serial}?done=noted#notes", status_code=303)
