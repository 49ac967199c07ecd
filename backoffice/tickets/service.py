"""Tickets: opened by the call centre, by an alert (``open_ticket``, for other domains) or by a field
agent; assigned to a field agent; closed with the visit's outcome and the parts used from the agent's
stock. Closing a repossession as done ends the contract ('repossessed', audited) and moves the unit
from the customer to the agent (lifecycle 'repossessed'); the agent then returns it to the warehouse
(inventory). In the caller's transaction; every change audited.

Who sees what: ``scope_of(conn, staff)`` is None for staff who see every ticket (call centre,
administrators, viewers) and the agent's id for a field agent, who sees only their own tickets (another
agent's is not found) — every query takes it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import psycopg

from backoffice import clock
from backoffice.agents import repository as agents
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.contracts import service as contracts
from backoffice.hours import WorkingHours
from backoffice.inventory import service as inventory
from backoffice.staff.schemas import Staff
from backoffice.tickets import repository
from backoffice.tickets.schemas import KINDS, Closing, NewVisit, Ticket, Visit

# Hours on the SLA clock: the company's working hours (PAYGO_BUSINESS_HOURS, by default Mon-Sat 08:00-18:00,
# ten a day, so 30 is three working days), or plain hours where the company runs 24/7.
DEFAULT_SLA_HOURS: dict[str, int] = {
    "repair": 30,
    "battery_swap": 20,
    "installation": 50,
    "repossession": 70,
    "customer_education": 30,
}
SOURCES = ("call_centre", "alert", "field_agent")
NO_AGENT = 0  # the scope of a field agent login that is no agent: no ticket has agent 0


class TicketRefused(ValueError):
    """A change that cannot be made; the message says why, for people."""


def scope_of(conn: psycopg.Connection, staff: Staff) -> int | None:
    """None: sees every ticket. Otherwise the agent whose tickets (and customers) alone are visible."""
    if staff.roles & {"admin", "call_centre", "finance", "viewer"}:
        return None
    agent = agents.agent_of_user(conn, staff.user_id)
    return NO_AGENT if agent is None else agent.id


def sla_due(
    kind: str, opened_at: datetime, sla_hours: Mapping[str, int] | None = None, working: WorkingHours | None = None
) -> datetime:
    """When a ticket of ``kind`` opened at ``opened_at`` is due: its SLA's hours counted in the company's
    working hours (``settings.working_hours``; None: round the clock)."""
    hours = (sla_hours or {}).get(kind, DEFAULT_SLA_HOURS[kind])
    return opened_at + timedelta(hours=hours) if working is None else working.add(opened_at, hours)


def with_clocks(tickets: list[Ticket], working: WorkingHours | None, now: datetime | None = None) -> list[Ticket]:
    """The tickets with both clocks filled in: the time open round the clock (24/7) and in working hours,
    up to closing or ``now``."""
    now = now or clock.utc_now()
    out = []
    for t in tickets:
        end = t.closed_at or now
        elapsed = max(end - t.opened_at, timedelta(0))
        working_elapsed = elapsed if working is None else working.between(t.opened_at, end)
        hour = timedelta(hours=1)
        out.append(t.model_copy(update={"elapsed_hours": round(elapsed / hour, 1),
                                        "working_hours_elapsed": round(working_elapsed / hour, 1)}))  # fmt: skip
    return out


def open_ticket(
    conn: psycopg.Connection,
    actor: Actor,
    unit_id: int,
    kind: str,
    source: str,
    note: str | None = None,
    *,
    agent_id: int | None = None,
    sla_hours: Mapping[str, int] | None = None,
    working: WorkingHours | None = None,
) -> int:
    """Open a ticket on a unit (for its newest contract's customer), in the caller's transaction, audited;
    returns its id. ``kind`` one of KINDS, ``source`` one of 'call_centre', 'alert', 'field_agent';
    ``agent_id`` assigns it at once; ``sla_hours`` is ``settings.ticket_sla_hours`` (defaults otherwise),
    counted in ``working`` hours (``settings.working_hours``; None: round the clock).
    A unit has at most one open ticket of a kind (the database says so too): when it has one, the report
    joins it (its note added, audited as 'ticket-joined'; assigned to ``agent_id`` if it was unassigned)
    and keeps its SLA, and that ticket's id is returned — a flapping alert is one visit, not one per flap.
    LookupError: no such unit or agent; TicketRefused: a bad kind or source."""
    if kind not in KINDS:
        raise TicketRefused(f"unknown ticket kind {kind!r}; one of {', '.join(KINDS)}")
    if source not in SOURCES:
        raise TicketRefused(f"unknown ticket source {source!r}; one of {', '.join(SOURCES)}")
    if conn.execute("select 1 from units where id = %s", (unit_id,)).fetchone() is None:
        raise LookupError(f"no unit {unit_id}")
    if agent_id is not None and not repository.agent_is_active(conn, agent_id):
        raise LookupError(f"no active agent {agent_id}")
    contract = repository.contract_of_unit(conn, unit_id)
    due = sla_due(kind, clock.utc_now(), sla_hours, working)
    inserted = repository.insert(
        conn,
        unit_id,
        contract[0] if contract else None,
        contract[1] if contract else None,
        kind,
        source,
        agent_id,
        note,
        actor.name,
        due,
    )
    if inserted is None:
        return _join(conn, actor, unit_id, kind, source, note, agent_id)
    ticket_id = inserted
    audit.record(
        conn,
        actor,
        "ticket-opened",
        "ticket",
        ticket_id,
        after={
            "unit_id": unit_id,
            "kind": kind,
            "source": source,
            "agent_id": agent_id,
            "note": note,
            "due_at": due.isoformat(),
        },
    )
    return ticket_id


def _join(
    conn: psycopg.Connection, actor: Actor, unit_id: int, kind: str, source: str, note: str | None,
    agent_id: int | None,
) -> int:  # fmt: skip
    """The report joins the unit's open ticket of this kind (see open_ticket)."""
    found = repository.open_of_unit(conn, unit_id, kind)
    if found is None:  # closed between the insert and this read: open it now
        raise TicketRefused(f"the open {kind} ticket of unit {unit_id} was just closed: try again")
    ticket_id, assigned = found
    if note:
        repository.add_note(conn, ticket_id, note)
    if agent_id is not None and assigned is None:
        repository.assign(conn, ticket_id, agent_id)
    audit.record(
        conn,
        actor,
        "ticket-joined",
        "ticket",
        ticket_id,
        after={"source": source, "note": note, "agent_id": agent_id if assigned is None else assigned},
    )
    return ticket_id


def assign(conn: psycopg.Connection, actor: Actor, ticket_id: int, agent_id: int) -> Ticket:
    ticket = repository.get(conn, ticket_id, None, lock=True)
    if ticket is None:
        raise LookupError(f"no ticket {ticket_id}")
    if ticket.state not in ("open", "assigned"):
        raise TicketRefused(f"ticket {ticket_id} is {ticket.state}")
    if not repository.agent_is_active(conn, agent_id):
        raise LookupError(f"no active agent {agent_id}")
    repository.assign(conn, ticket_id, agent_id)
    audit.record(
        conn,
        actor,
        "ticket-assigned",
        "ticket",
        ticket_id,
        before={"state": ticket.state, "agent_id": ticket.agent_id},
        after={"state": "assigned", "agent_id": agent_id},
    )
    after = repository.get(conn, ticket_id, None)
    assert after is not None
    return after


def close(conn: psycopg.Connection, actor: Actor, ticket_id: int, closing: Closing, scope: int | None) -> Ticket:
    """Close a ticket with the visit's outcome; parts used come out of the assigned agent's stock. A
    repossession done ends the contract and brings the unit to the agent; an installation done puts the
    unit at the customer. LookupError (not found in scope) / TicketRefused / inventory.MoveRefused."""
    ticket = repository.get(conn, ticket_id, scope, lock=True)
    if ticket is None:
        raise LookupError(f"no ticket {ticket_id}")
    if ticket.state in ("done", "cancelled"):
        raise TicketRefused(f"ticket {ticket_id} is {ticket.state} already")
    done = closing.outcome == "done"
    if closing.parts and not done:
        raise TicketRefused("a cancelled visit used no parts")
    if done and (closing.parts or ticket.kind in ("repossession", "installation")) and ticket.agent_id is None:
        raise TicketRefused("assign the ticket to a field agent first: the parts and the unit go through their stock")
    location = agents.get_agent(conn, ticket.agent_id).location_id if ticket.agent_id else None  # type: ignore[union-attr]
    for part in closing.parts:
        assert location is not None
        inventory.use_parts(conn, actor, location, part.sku, part.quantity, ticket_id, ticket.customer_id)
        repository.add_part_used(conn, ticket_id, part.sku, part.quantity)
    if done and ticket.kind == "repossession":
        _repossess(conn, actor, ticket, closing.note)
    if done and ticket.kind == "installation" and ticket.customer_id is not None:
        unit = inventory.repository.current(conn, ticket.unit_id)
        if unit is not None and unit[1] in ("in_stock", "with_agent"):
            inventory.move_unit(
                conn, actor, ticket.unit_id, "install", customer_id=ticket.customer_id, ticket_id=ticket_id
            )
    repository.close(conn, ticket_id, closing.outcome, closing.note, actor.name)
    audit.record(
        conn,
        actor,
        f"ticket-{closing.outcome}",
        "ticket",
        ticket_id,
        before={"state": ticket.state},
        after={"state": closing.outcome, "note": closing.note, "parts": [p.model_dump() for p in closing.parts]},
    )
    after = repository.get(conn, ticket_id, None)
    assert after is not None
    return after


def _repossess(conn: psycopg.Connection, actor: Actor, ticket: Ticket, note: str | None) -> None:
    """The contract ends ('repossessed': reminders and collections skip every contract that is not
    active) and the unit goes from the customer to the agent who took it."""
    if ticket.account_number and ticket.contract_state == "active":
        contracts.end_contract(
            conn, ticket.account_number, "repossessed", actor, note or f"repossessed on ticket {ticket.id}"
        )
    inventory.move_unit(
        conn, actor, ticket.unit_id, "repossess", agent_id=ticket.agent_id, ticket_id=ticket.id, note=note
    )


def record_visit(conn: psycopg.Connection, actor: Actor, ticket_id: int, visit: NewVisit, scope: int | None) -> Visit:
    """A visit that leaves the ticket open (the customer was not home, the visit moved to another day, a
    part is missing): kept on the ticket, audited ('ticket-visit'); the ticket keeps its agent and SLA.
    LookupError (not found in scope) / TicketRefused (closed already, or a day in the past)."""
    ticket = repository.get(conn, ticket_id, scope, lock=True)
    if ticket is None:
        raise LookupError(f"no ticket {ticket_id}")
    if ticket.state not in ("open", "assigned"):
        raise TicketRefused(f"ticket {ticket_id} is {ticket.state} already")
    if visit.next_visit_on is not None and visit.next_visit_on < clock.today():
        raise TicketRefused(f"the next visit ({visit.next_visit_on}) cannot be in the past")
    done = repository.add_visit(conn, ticket_id, visit.outcome, visit.next_visit_on, visit.note, actor.name)
    audit.record(
        conn,
        actor,
        "ticket-visit",
        "ticket",
        ticket_id,
        before={"state": ticket.state},
        after={"state": ticket.state, "visit": visit.outcome, "note": visit.note,
               "next_visit_on": visit.next_visit_on.isoformat() if visit.next_visit_on else None},
    )  # fmt: skip
    return done


def default_agent(conn: psycopg.Connection, unit_id: int) -> tuple[int, str] | None:
    """Who a new ticket on the unit goes to unless the caller says otherwise: an active agent whose areas
    cover the customer's village (and district, where the area names one) — the agent who sold the
    contract if they serve it, else the one with the fewest open tickets. (agent id, the area matched),
    or None when no agent serves the customer's area (the ticket waits for the dispatcher)."""
    found = repository.area_agents(conn, unit_id)
    return (found[0][0], found[0][1]) if found else None


def open_for(
    conn: psycopg.Connection,
    staff: Staff,
    serial: str,
    kind: str,
    note: str | None,
    agent_id: int | None,
    sla_hours: Mapping[str, int],
    working: WorkingHours | None = None,
) -> int:
    """A ticket opened from the pages or the API: by the call centre (optionally assigned at once) or by a
    field agent, for a unit of one of their customers, assigned to themselves."""
    row = conn.execute("select id from units where serial = %s", (serial,)).fetchone()
    scope = scope_of(conn, staff)
    if row is None or (scope is not None and not repository.unit_of_agent_customer(conn, int(row[0]), scope)):
        raise LookupError(f"no unit {serial!r} among your customers" if scope is not None else f"no unit {serial!r}")
    if scope is not None:
        if kind == "repossession":  # it ends a contract: the call centre decides, an agent carries it out
            raise TicketRefused("a repossession is opened by the call centre, then assigned to a field agent")
        return open_ticket(
            conn,
            staff.actor,
            int(row[0]),
            kind,
            "field_agent",
            note,
            agent_id=scope,
            sla_hours=sla_hours,
            working=working,
        )
    return open_ticket(
        conn,
        staff.actor,
        int(row[0]),
        kind,
        "call_centre",
        note,
        agent_id=agent_id,
        sla_hours=sla_hours,
        working=working,
    )
