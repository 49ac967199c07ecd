"""Agent pages: the list of agents with their commissions, one agent's page (sales, active units, PAR 30
of their customers, collections this month, commissions), and a field agent's own page with their
customers (phone-sized)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice.agents import repository, service
from backoffice.agents.schemas import AgentList
from backoffice.deps import DbConn, RowId
from backoffice.inventory import repository as inventory
from backoffice.listing import listed
from backoffice.money import MoneyError, exponent
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.templating import templates

me = APIRouter(tags=["pages"], dependencies=[Depends(Allow("field_agent"))])
router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("call_centre", "finance", "viewer"))])
finance = APIRouter(tags=["pages"], dependencies=[Depends(Allow("finance"))])


def _refused(request: Request, title: str, message: str, status: int) -> Response:
    return templates.TemplateResponse(request, "refused.html", {"title": title, "message": message}, status_code=status)


@me.get("/agents/me", response_class=HTMLResponse)
def my_page(request: Request, conn: DbConn, staff: CurrentStaff) -> Response:
    agent = repository.agent_of_user(conn, staff.user_id)
    if agent is None:
        return _refused(request, "Not an agent", f"{staff.name} is not an agent: ask an administrator.", 404)
    return templates.TemplateResponse(
        request,
        "agent.html",
        {
            "p": service.page(conn, agent),
            "mine": True,
            "customers": repository.customers(conn, agent.id),
            "parts": inventory.parts_at(conn, agent.location_id) if agent.location_id else [],
            "units": inventory.search_units(conn, "", agent.location_id, 200) if agent.location_id else [],
            "paid": None,
            "currency": None,
        },
    )


@router.get("/agents", response_class=HTMLResponse)
def agents_page(request: Request, conn: DbConn, query: Annotated[AgentList, Depends(listed(AgentList))]) -> Response:
    page = repository.agents_page(conn, query)
    return templates.TemplateResponse(
        request,
        "agents.html",
        {"page": page, "f": query, "agents": page.rows, "commissions": repository.commissions(conn)},
    )


@router.get("/agents/{agent_id}", response_class=HTMLResponse)
def agent_page(
    agent_id: RowId,
    request: Request,
    conn: DbConn,
    paid: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
) -> Response:
    agent = repository.get_agent(conn, agent_id)
    if agent is None:
        return _refused(request, "No such agent", f"There is no agent {agent_id}.", 404)
    try:
        exponent(currency or "")
    except MoneyError:
        paid = currency = None  # the note after a payout only: an unknown currency shows nothing
    stock = inventory.parts_at(conn, agent.location_id) if agent.location_id else []
    units = inventory.search_units(conn, "", agent.location_id, 200) if agent.location_id else []
    return templates.TemplateResponse(
        request,
        "agent.html",
        {
            "p": service.page(conn, agent),
            "mine": False,
            "customers": [],
            "parts": stock,
            "units": units,
            "paid": paid,
            "currency": currency,
        },
    )


@finance.post("/agents/{agent_id}/payouts", response_class=HTMLResponse)
def pay_out(
    agent_id: RowId,
    request: Request,
    conn: DbConn,
    staff: CurrentStaff,
    currency: Annotated[str, Form(pattern=r"^[A-Z]{3}$")],
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """Finance pays an agent everything due in a currency (recorded for payroll, audited)."""
    try:
        with conn.transaction():
            payout = service.pay_out(conn, staff.actor, agent_id, currency, note or None)
    except LookupError as err:
        return _refused(request, "No such agent", str(err), 404)
    except service.AgentError as err:
        return _refused(request, "Nothing paid", str(err), 409)
    return RedirectResponse(f"/agents/{agent_id}?paid={payout.amount}&currency={currency}", status_code=303)
