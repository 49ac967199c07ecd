"""JSON API of tickets (``/api/v1/tickets``). A field agent sees and closes only their own tickets:
another agent's ticket is 404, exactly like one that does not exist."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query

from backoffice.agents import repository as agents
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.hours import WorkingHours
from backoffice.inventory import repository as inventory
from backoffice.inventory.service import MoveRefused
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.staff.schemas import Staff
from backoffice.tickets import repository, service
from backoffice.tickets.schemas import (
    Assignment,
    Closing,
    Kind,
    NewTicket,
    NewVisit,
    State,
    Ticket,
    TicketDetail,
    Visit,
)

router = APIRouter(
    prefix="/api/v1/tickets", tags=["tickets"], dependencies=[Depends(Allow("call_centre", "field_agent", "viewer"))]
)
work = APIRouter(
    prefix="/api/v1/tickets", tags=["tickets"], dependencies=[Depends(Allow("call_centre", "field_agent"))]
)
dispatch = APIRouter(prefix="/api/v1/tickets", tags=["tickets"], dependencies=[Depends(Allow("call_centre"))])


@router.get("", response_model=list[Ticket])
def list_tickets(
    conn: DbConn,
    staff: CurrentStaff,
    settings: SettingsDep,
    state: Annotated[list[State] | None, Query()] = None,
    kind: Kind | None = None,
    breached: bool | None = None,
    agent_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Ticket]:
    """Open tickets by due time first (a field agent: only their own)."""
    scope = service.scope_of(conn, staff)
    found = repository.search(
        conn, scope, states=tuple(state or ()), kind=kind, breached=breached, agent_id=agent_id, limit=limit
    )
    return service.with_clocks(found, settings.working_hours)


def detail(conn: psycopg.Connection, staff: Staff, ticket_id: int, working: WorkingHours | None) -> TicketDetail:
    """The ticket with both its clocks (24/7 and working hours), its parts and where its unit is."""
    found = repository.get(conn, ticket_id, service.scope_of(conn, staff))
    if found is None:
        raise HTTPException(404, f"no ticket {ticket_id} for you")
    ticket = service.with_clocks([found], working)[0]
    agent = agents.get_agent(conn, ticket.agent_id) if ticket.agent_id else None
    return TicketDetail(
        ticket=ticket,
        parts_used=repository.parts_used(conn, ticket_id),
        unit=inventory.unit_where(conn, ticket.unit_id),
        agent_parts=inventory.parts_at(conn, agent.location_id) if agent and agent.location_id else [],
        visits=repository.visits(conn, ticket_id),
    )


@router.get("/{ticket_id}", response_model=TicketDetail)
def get_ticket(ticket_id: RowId, conn: DbConn, staff: CurrentStaff, settings: SettingsDep) -> TicketDetail:
    return detail(conn, staff, ticket_id, settings.working_hours)


@work.post("", response_model=Ticket, status_code=201)
def open_ticket(body: NewTicket, conn: DbConn, staff: CurrentStaff, settings: SettingsDep) -> Ticket:
    """Open a ticket on a unit: the call centre (``agent_id`` assigns it at once), or a field agent for one of
    their customers' units (assigned to themselves)."""
    try:
        with conn.transaction():
            ticket_id = service.open_for(
                conn,
                staff,
                body.serial,
                body.kind,
                body.note,
                body.agent_id,
                settings.ticket_sla_hours,
                settings.working_hours,
            )
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except service.TicketRefused as err:
        raise HTTPException(422, str(err)) from None
    found = repository.get(conn, ticket_id, None)
    assert found is not None
    return service.with_clocks([found], settings.working_hours)[0]


@work.post("/{ticket_id}/close", response_model=Ticket)
def close_ticket(ticket_id: RowId, body: Closing, conn: DbConn, staff: CurrentStaff) -> Ticket:
    """The visit's outcome, and the parts used (out of the assigned agent's stock). A repossession done
    ends the contract and brings the unit back to the agent."""
    try:
        with conn.transaction():
            return service.close(conn, staff.actor, ticket_id, body, service.scope_of(conn, staff))
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except (service.TicketRefused, MoveRefused) as err:
        raise HTTPException(409, str(err)) from None


@work.post("/{ticket_id}/visits", response_model=Visit, status_code=201)
def record_visit(ticket_id: RowId, body: NewVisit, conn: DbConn, staff: CurrentStaff) -> Visit:
    """A visit that leaves the ticket open: the customer was not home, the visit was rescheduled (to
    ``next_visit_on``), or a part is missing. The ticket keeps its agent and its SLA."""
    try:
        with conn.transaction():
            return service.record_visit(conn, staff.actor, ticket_id, body, service.scope_of(conn, staff))
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except service.TicketRefused as err:
        raise HTTPException(409, str(err)) from None


@dispatch.post("/{ticket_id}/assign", response_model=Ticket)
def assign(ticket_id: RowId, body: Assignment, conn: DbConn, staff: CurrentStaff) -> Ticket:
    try:
        with conn.transaction():
            return service.assign(conn, staff.actor, ticket_id, body.agent_id)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except service.TicketRefused as err:
        raise HTTPException(409, str(err)) from None
