"""The unit page (``/units/{serial}``), where the call centre works while a customer is on the phone: its
first screen answers "why is my light off?" (backoffice/callcentre/answer.py, docs/unit_page.md), and its
actions (resend a token, goodwill days, a call note, open a ticket) are form posts with the CSRF token
that come back to the page (post/redirect/get) with a confirmation at its top naming what was done. The
redirect carries only ids, which the page looks up again for this unit. Panels of other domains
(``app.state.unit_panels``) render below."""

from __future__ import annotations

from datetime import tzinfo
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice import clock
from backoffice.callcentre import service
from backoffice.callcentre.schemas import UnitPage
from backoffice.config import Settings
from backoffice.customers.schemas import LANGUAGES
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.staff.schemas import Staff
from backoffice.templating import UnitPanel, templates
from backoffice.tickets.schemas import KINDS, Kind

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance"))])
act_router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre"))])


def _page(
    request: Request, conn: DbConn, staff: Staff, settings: Settings, serial: str, *,
    done: dict[str, str] | None = None, refused: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    page = service.load_unit_page(conn, serial, with_sms=staff.holds(service.SMS_READERS),
                                  alerts=getattr(request.app.state, "unit_alerts", None))  # fmt: skip
    if page is None:
        raise HTTPException(404, f"no unit with serial {serial!r}; use the search box above")
    week, month = service.page_charts(page)
    panels: list[UnitPanel] = getattr(request.app.state, "unit_panels", [])
    acts = staff.holds(frozenset({"call_centre"}))
    zone = clock.company_zone(settings.timezone)
    context = {
        "p": page, "week": week, "month": month, "done": _confirmation(conn, page, done or {}, zone),
        "refused": refused, "now": clock.utc_now(), "zone": zone,
        "languages": LANGUAGES, "acts": acts, "goodwill_max": service.goodwill_limit(settings, staff.roles),
        "kinds": KINDS, "agents": service.ticket_agents(conn, page.unit.id) if acts else None,
        # A panel with nothing to say for this unit (its load gives None) is left out.
        "panels": [(title, template, value) for title, template, value in
                   ((p.title, p.template, p.load(conn, page.unit.id)) for p in panels) if value is not None],
    }  # fmt: skip
    return templates.TemplateResponse(request, "unit.html", context, status_code=status)


def _confirmation(conn: DbConn, page: UnitPage, done: dict[str, str], zone: tzinfo) -> str | None:
    """What was just done, named, for the top of the page; only ids of this unit's own rows are used."""
    what = done.get("done")
    token = next((t for t in page.tokens if str(t.id) == done.get("token")), None)
    code = f"{token.token[:3]} {token.token[3:6]} {token.token[6:]}" if token else ""
    if what == "resent":
        return (f"Token {code} ({token.value_days} d) sent again, by SMS and to the unit." if token
                else "The token is on its way again, by SMS and to the unit.")  # fmt: skip
    if what == "goodwill":
        return (f"{token.value_days} goodwill day{'s' if token.value_days != 1 else ''} granted: token {code} "
                "is on its way by SMS and to the unit." if token
                else "Goodwill days granted: the token is on its way by SMS and to the unit.")  # fmt: skip
    if what == "noted":
        return "Call note saved."
    if what == "ticket" and done.get("ticket", "").isdigit():
        t = service.ticket_of_unit(conn, int(done["ticket"]), page.unit.id)
        if t is not None:
            who = f"assigned to {t.agent_name}" if t.agent_name else "waiting for the dispatcher to assign it"
            due = t.due_at.astimezone(zone)
            return f"Ticket #{t.id} ({t.kind.replace('_', ' ')}) opened, {who}; due {due:%Y-%m-%d %H:%M %Z}."
    return None


@router.get("/units/{serial}", response_class=HTMLResponse)
def unit_page(
    serial: str, request: Request, conn: DbConn, staff: CurrentStaff, settings: SettingsDep,
    done: str | None = None, token: str | None = None, ticket: str | None = None,
) -> Response:  # fmt: skip
    given = {k: v for k, v in (("done", done), ("token", token), ("ticket", ticket)) if v}
    return _page(request, conn, staff, settings, serial, done=given)


@act_router.post("/units/{serial}/tokens/{token_id}/resend")
def resend(serial: str, token_id: RowId, conn: DbConn, staff: CurrentStaff) -> Response:
    with conn.transaction():  # committed before the answer: the dispatcher may look at once
        try:
            service.resend_token(conn, serial, token_id, staff.actor)
        except LookupError as err:
            raise HTTPException(404, str(err)) from None
    return RedirectResponse(f"/units/{serial}?done=resent&token={token_id}", status_code=303)


@act_router.post("/units/{serial}/goodwill")
def goodwill(
    serial: str, request: Request, conn: DbConn, staff: CurrentStaff, settings: SettingsDep,
    days: Annotated[int, Form(ge=1, le=995)], reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:  # fmt: skip
    if not reason.strip():
        return _page(request, conn, staff, settings, serial, refused="Goodwill days need a reason.", status=422)
    try:
        with conn.transaction():
            done = service.grant_goodwill(conn, settings, serial, days, reason.strip(), staff.actor, staff.roles)
    except service.ActionRefused as err:
        return _page(request, conn, staff, settings, serial, refused=str(err), status=422)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    return RedirectResponse(f"/units/{serial}?done=goodwill&token={done.token_id}", status_code=303)


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
    return RedirectResponse(f"/units/{serial}?done=noted", status_code=303)


@act_router.post("/units/{serial}/tickets")
def open_ticket(
    serial: str, request: Request, conn: DbConn, staff: CurrentStaff, settings: SettingsDep,
    kind: Annotated[Kind, Form()], note: Annotated[str | None, Form(max_length=2000)] = None,
    agent_id: Annotated[str | None, Form(max_length=20)] = None,
) -> Response:  # fmt: skip
    """A ticket on this unit, from its page (audited as the logged-in member of staff); the assignee the
    form proposes is the agent serving the customer's area (``tickets.service.default_agent``)."""
    agent = (agent_id or "").strip()
    if agent and not agent.isdigit():
        return _page(request, conn, staff, settings, serial, refused=f"No agent {agent!r}.", status=422)
    try:
        with conn.transaction():
            ticket_id = service.open_ticket(conn, settings, staff, serial, kind, (note or "").strip() or None,
                                            int(agent) if agent else None)  # fmt: skip
    except service.ActionRefused as err:
        return _page(request, conn, staff, settings, serial, refused=str(err), status=422)
    except LookupError as err:
        return _page(request, conn, staff, settings, serial, refused=f"No ticket opened: {err}.", status=404)
    return RedirectResponse(f"/units/{serial}?done=ticket&ticket={ticket_id}", status_code=303)
