"""Agents: adding one (a staff login with the field_agent role, the areas served, a stock location of
their own), recording who sold a contract, the agent page's numbers, commission payouts and the
payroll export. In the caller's transaction; every change audited."""

from __future__ import annotations

import csv
import io
from datetime import date

import psycopg

from backoffice import clock
from backoffice.agents import par, repository
from backoffice.agents.schemas import Agent, AgentPage, NewAgent, Payout
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.inventory import repository as inventory


class AgentError(ValueError):
    """A refused change; the message says why, for people."""


def create_agent(conn: psycopg.Connection, actor: Actor, new: NewAgent) -> Agent:
    user_id = None
    if new.username:
        found = repository.user_id_of(conn, new.username)
        if found is None:
            raise AgentError(f"no staff login {new.username!r}: add it first (paygo users add NAME --role field_agent)")
        if "field_agent" not in found[1]:
            raise AgentError(f"{new.username} does not hold the field_agent role")
        user_id = found[0]
    if conn.execute(
        "select 1 from agents where code = %s or (user_id is not null and user_id = %s)", (new.code, user_id)
    ).fetchone():
        raise AgentError(f"an agent with code {new.code} or login {new.username} exists already")
    agent_id = repository.insert_agent(conn, user_id, new.code, new.name, new.kind, new.phone)
    for area in new.areas:
        village, _, district = area.partition("/")
        if village.strip():
            repository.add_area(conn, agent_id, village.strip()[:200], district.strip()[:200])
    inventory.insert_location(conn, "agent", f"Agent {new.code} ({new.name})", agent_id)
    agent = repository.get_agent(conn, agent_id)
    assert agent is not None
    audit.record(conn, actor, "agent-created", "agent", agent_id, after=agent.model_dump())
    return agent


def record_sale(conn: psycopg.Connection, actor: Actor, agent_id: int, account_number: str) -> None:
    """LookupError: no such agent or contract; AgentError: moving the sale to another agent after the one
    recorded was paid commissions (they could be paid for it twice)."""
    if repository.get_agent(conn, agent_id) is None:
        raise LookupError(f"no agent {agent_id}")
    contract_id = repository.contract_of_account(conn, account_number)
    if contract_id is None:
        raise LookupError(f"no contract with account number {account_number!r}")
    while True:
        before = repository.lock_sale(conn, contract_id)
        # A payout locks its agent's row (pay_out): moving the sale waits for the payouts of the agent it
        # leaves and of the one it goes to, and they wait for it, so the two never count one contract each.
        repository.lock_agents(conn, {agent_id} if before is None else {agent_id, before})
        if before is not None:
            break
        if repository.insert_sale(conn, contract_id, agent_id):
            break
        # Another first record came in meanwhile: it is a move now, under the locks of a move.
    paid = repository.paid_since_sale(conn, contract_id, agent_id)
    if paid is not None:
        raise AgentError(f"{account_number} was sold by agent {paid}, who has been paid commissions since: "
                         "claw back what they were paid for it first, then record the sale again")  # fmt: skip
    if before is not None:
        repository.move_sale(conn, contract_id, agent_id)
    audit.record(
        conn,
        actor,
        "agent-sale-recorded",
        "contract",
        account_number,
        before=None if before is None else {"agent_id": before},
        after={"agent_id": agent_id},
    )


def page(conn: psycopg.Connection, agent: Agent, today: date | None = None) -> AgentPage:
    today = today or clock.today()
    sold, active = repository.counts(conn, agent.id)
    risk = par.par(repository.par_inputs(conn, agent.id, today), today, 30)
    return AgentPage(
        agent=agent,
        sales=sold,
        recent_sales=repository.sales(conn, agent.id),
        active_units=active,
        par30=risk.value,
        par30_at_risk=risk.at_risk,
        par30_active=risk.active,
        collections_this_month=repository.collections(conn, agent.id, today.replace(day=1)),
        commissions=repository.commissions(conn, agent.id),
    )


def pay_out(conn: psycopg.Connection, actor: Actor, agent_id: int, currency: str, note: str | None) -> Payout:
    """Pay an agent what is due in a currency (all of it), audited. LookupError / AgentError."""
    if not repository.lock_agent(conn, agent_id):
        raise LookupError(f"no agent {agent_id}")
    due = next((c.due for c in repository.commissions(conn, agent_id) if c.currency == currency), 0)
    if due <= 0:
        raise AgentError(f"nothing is due to agent {agent_id} in {currency}")
    payout = repository.insert_payout(conn, agent_id, currency, due, actor.name, note)
    audit.record(
        conn,
        actor,
        "commission-paid",
        "agent",
        agent_id,
        after={"payout": payout.id, "currency": currency, "amount": due, "note": note},
    )
    return payout


def payroll_csv(conn: psycopg.Connection) -> str:
    """Commissions per agent and currency for payroll (amounts in minor units, as in the ledger)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["agent_code", "agent_name", "currency", "earned", "clawed_back", "paid", "due"])
    for c in repository.commissions(conn):
        writer.writerow([_as_text(c.agent_code), _as_text(c.agent_name), c.currency, c.earned, c.clawed_back,
                         c.paid, c.due])  # fmt: skip
    return out.getvalue()


def _as_text(value: str) -> str:
    """A cell starting with = + - @ (or a tab or carriage return before one) would be a formula in a
    spreadsheet: quoted as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
