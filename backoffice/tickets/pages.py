"""Ticket pages: the list (a field agent's fits a phone: only their own tickets, as cards), one ticket
with its visit form (outcome, note, a part from the agent's stock), opening and assigning tickets."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from backoffice import clock
from backoffice.agents import repository as agents
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.inventory.service import MoveRefused
from backoffice.listing import listed
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.templating import templates
from backoffice.tickets import api, repository, service
from backoffice.tickets.schemas import (
    KINDS,
    VISIT_OUTCOMES,
    Closing,
    Kind,
    NewVisit,
    PartUse,
    TicketList,
    VisitOutcome,
)

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "field_agent", "viewer"))])
work = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "field_agent"))])
dispatch = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre"))])


def _refused(request: Request, title: str, message: str, status: int) -> Response:
    return templates.TemplateResponse(request, "refused.html", {"title": title, "message": message}, status_code=status)


@router.get("/tickets", response_class=HTMLResponse)
def tickets_page(
    request: Request,
    conn: DbConn,
    staff: CurrentStaff,
    settings: SettingsDep,
    query: Annotated[TicketList, Depends(listed(TicketList))],
) -> Response:
    scope = service.scope_of(conn, staff)
    page = repository.search_page(conn, scope, query)
    found = service.with_clocks(page.rows, settings.working_hours)
    return templates.TemplateResponse(
        request,
        "tickets.html",
        {
            "page": page,
            "f": query,
            "tickets": found,
            "scope": scope,
            "state": query.state or "",
            "kind": query.kind or "",
            "kinds": KINDS,
            "breached": query.breached,
            "agent_id": query.agent_id,
            "agents": agents.agents(conn) if scope is None else [],
            "now": clock.utc_now(),
            "zone": clock.company_zone(settings.timezone),
            "schedule": settings.business_hours,
        },
    )


def _done(ticket_id: int, done: str | None) -> str | None:
    """The confirmation at the top of the ticket page after an action (post/redirect/get)."""
    if done in VISIT_OUTCOMES:
        return f"Visit recorded on ticket #{ticket_id}: {VISIT_OUTCOMES[done]}. The ticket stays open."
    return None


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(
    ticket_id: RowId, request: Request, conn: DbConn, staff: CurrentStaff, settings: SettingsDep,
    done: str | None = None,
) -> Response:  # fmt: skip
    try:
        found = api.detail(conn, staff, ticket_id, settings.working_hours)
    except HTTPException:
        return _refused(request, "No such ticket", f"There is no ticket {ticket_id} for you.", 404)
    scope = service.scope_of(conn, staff)
    return templates.TemplateResponse(
        request,
        "ticket.html",
        {
            "d": found,
            "t": found.ticket,
            "visit_outcomes": VISIT_OUTCOMES,
            "done": _done(found.ticket.id, done),
            "agents": agents.agents(conn) if scope is None else [],
            "now": clock.utc_now(),
            "zone": clock.company_zone(settings.timezone),
            "schedule": settings.business_hours,
        },
    )


@work.post("/tickets", response_class=HTMLResponse)
def open_ticket(
    request: Request,
    conn: DbConn,
    staff: CurrentStaff,
    settings: SettingsDep,
    serial: Annotated[str, Form(max_length=64)],
    kind: Annotated[Kind, Form()],
    note: Annotated[str | None, Form(max_length=2000)] = None,
    agent_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
) -> Response:
    try:
        with conn.transaction():
            ticket_id = service.open_for(
                conn,
                staff,
                serial.strip(),
                kind,
                note or None,
                agent_id,
                settings.ticket_sla_hours,
                settings.working_hours,
            )
    except LookupError as err:
        return _refused(request, "No ticket opened", str(err), 404)
    except service.TicketRefused as err:
        return _refused(request, "No ticket opened", str(err), 422)
    return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)


@work.post("/tickets/{ticket_id}/close", response_class=HTMLResponse)
def close(
    ticket_id: RowId,
    request: Request,
    conn: DbConn,
    staff: CurrentStaff,
    outcome: Annotated[Literal["done", "cancelled"], Form()],
    note: Annotated[str | None, Form(max_length=2000)] = None,
    sku: Annotated[str | None, Form(max_length=40)] = None,
    quantity: Annotated[int, Form(ge=1, le=1000)] = 1,
) -> Response:
    try:
        closing = Closing(
            outcome=outcome,
            note=note or None,
            parts=[PartUse(sku=sku, quantity=quantity)] if sku else [],
        )
    except ValueError as err:
        return _refused(request, "Ticket not closed", str(err).splitlines()[0], 422)
    try:
        with conn.transaction():
            service.close(conn, staff.actor, ticket_id, closing, service.scope_of(conn, staff))
    except LookupError:
        return _refused(request, "No such ticket", f"There is no ticket {ticket_id} for you.", 404)
    except (service.TicketRefused, MoveRefused) as err:
        return _refused(request, "Ticket not closed", str(err), 409)
    return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)


@work.post("/tickets/{ticket_id}/visits", response_class=HTMLResponse)
def record_visit(
    ticket_id: RowId,
    request: Request,
    conn: DbConn,
    staff: CurrentStaff,
    outcome: Annotated[VisitOutcome, Form()],
    next_visit_on: Annotated[str | None, Form(max_length=10)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """A visit that leaves the ticket open (customer not home, rescheduled, needs a part)."""
    try:
        day = date.fromisoformat(next_visit_on) if next_visit_on else None
    except ValueError:
        return _refused(request, "Visit not recorded", f"{next_visit_on!r} is not a day (YYYY-MM-DD)", 422)
    try:
        visit = NewVisit(outcome=outcome, next_visit_on=day, note=(note or "").strip() or None)
    except ValidationError as err:
        return _refused(request, "Visit not recorded", err.errors()[0]["msg"].removeprefix("Value error, "), 422)
    try:
        with conn.transaction():
            service.record_visit(conn, staff.actor, ticket_id, visit, service.scope_of(conn, staff))
    except LookupError:
        return _refused(request, "No such ticket", f"There is no ticket {ticket_id} for you.", 404)
    except service.TicketRefused as err:
        return _refused(request, "Visit not recorded", str(err), 409)
    return RedirectResponse(f"/tickets/{ticket_id}?done={outcome}", status_code=303)


@dispatch.post("/tickets/{ticket_id}/assign", response_class=HTMLResponse)
def assign(
    ticket_id: RowId,
    request: Request,
    conn: DbConn,
    staff: CurrentStaff,
    agent_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
) -> Response:
    try:
        with conn.transaction():
            service.assign(conn, staff.actor, ticket_id, agent_id)
    except LookupError as err:
        return _refused(request, "Not assigned", str(err), 404)
    except service.TicketRefused as err:
        return _refused(request, "Not assigned", str(err), 409)
    return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)
