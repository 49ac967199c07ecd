"""JSON API of agents (``/api/v1/agents``, ``/api/v1/commissions``): the agents and their pages, a field
agent's own page and customers, adding an agent, recording who sold a contract, commissions, payouts
and the payroll export."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from backoffice import clock
from backoffice.agents import repository, service
from backoffice.agents.schemas import Agent, AgentPage, Commission, Customer, NewAgent, NewPayout, NewSale, Payout
from backoffice.deps import DbConn, RowId
from backoffice.staff.guard import Allow, CurrentStaff

me = APIRouter(prefix="/api/v1/agents/me", tags=["agents"], dependencies=[Depends(Allow("field_agent"))])
router = APIRouter(
    prefix="/api/v1/agents", tags=["agents"], dependencies=[Depends(Allow("call_centre", "finance", "viewer"))]
)
sales = APIRouter(prefix="/api/v1/agents", tags=["agents"], dependencies=[Depends(Allow("call_centre", "finance"))])
admin = APIRouter(prefix="/api/v1/agents", tags=["agents"], dependencies=[Depends(Allow("admin"))])
finance = APIRouter(prefix="/api/v1", tags=["agents"], dependencies=[Depends(Allow("finance"))])


def _mine(conn: DbConn, staff: CurrentStaff) -> Agent:
    agent = repository.agent_of_user(conn, staff.user_id)
    if agent is None:
        raise HTTPException(404, f"{staff.name} is not an agent: an administrator adds agents at POST /api/v1/agents")
    return agent


@me.get("", response_model=AgentPage)
def my_page(conn: DbConn, staff: CurrentStaff) -> AgentPage:
    """The field agent's own numbers: sales, active units, PAR 30 of their customers, collections."""
    return service.page(conn, _mine(conn, staff))


@me.get("/customers", response_model=list[Customer])
def my_customers(conn: DbConn, staff: CurrentStaff) -> list[Customer]:
    """The field agent's customers (of the contracts they sold and of their tickets), nobody else's."""
    return repository.customers(conn, _mine(conn, staff).id)


@router.get("", response_model=list[Agent])
def list_agents(conn: DbConn) -> list[Agent]:
    return repository.agents(conn)


@router.get("/{agent_id}", response_model=AgentPage)
def agent_page(agent_id: RowId, conn: DbConn) -> AgentPage:
    agent = repository.get_agent(conn, agent_id)
    if agent is None:
        raise HTTPException(404, f"no agent {agent_id}")
    return service.page(conn, agent)


@admin.post("", response_model=Agent, status_code=201)
def add_agent(body: NewAgent, conn: DbConn, staff: CurrentStaff) -> Agent:
    """An agent: a staff login holding the field_agent role (``username``), the villages served, and a
    stock location of their own."""
    try:
        with conn.transaction():
            return service.create_agent(conn, staff.actor, body)
    except service.AgentError as err:
        raise HTTPException(409, str(err)) from None


@sales.post("/{agent_id}/sales", status_code=204)
def record_sale(agent_id: RowId, body: NewSale, conn: DbConn, staff: CurrentStaff) -> Response:
    """The agent who sold a contract (commissions follow it)."""
    try:
        with conn.transaction():
            service.record_sale(conn, staff.actor, agent_id, body.account_number)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except service.AgentError as err:
        raise HTTPException(409, str(err)) from None
    return Response(status_code=204)


@finance.get("/commissions", response_model=list[Commission])
def commissions(conn: DbConn) -> list[Commission]:
    """Per agent and currency: earned, clawed back, paid and due (minor units)."""
    return repository.commissions(conn)


@finance.get("/commissions/export.csv")
def payroll_export(conn: DbConn) -> Response:
    """The same as CSV, for payroll."""
    return Response(
        service.payroll_csv(conn),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="commissions-{clock.today()}.csv"'},
    )


@finance.post("/agents/{agent_id}/payouts", response_model=Payout, status_code=201)
def pay_out(agent_id: RowId, body: NewPayout, conn: DbConn, staff: CurrentStaff) -> Payout:
    """Pay an agent everything due in a currency (recorded, audited)."""
    try:
        with conn.transaction():
            return service.pay_out(conn, staff.actor, agent_id, body.currency, body.note)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except service.AgentError as err:
        raise HTTPException(409, str(err)) from None
