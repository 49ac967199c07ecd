"""Agents: adding one (a staff login with the field_agent role, the areas served, a stock location of
their own), recording who sold a contract, a whole sale (signing, the agent, the installation), the
agent page's numbers, commission rules, payouts and the payroll export. In the caller's transaction;
every change audited."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

import psycopg

from backoffice import clock
from backoffice.agents import par, repository
from backoffice.agents.schemas import Agent, AgentPage, CommissionRule, NewAgent, Payout
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.contracts import service as contracts
from backoffice.inventory import repository as inventory
from backoffice.inventory import service as stock_moves
from backoffice.registry import repository as registry
from backoffice.registry.schemas import NewContract


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


class SaleRefused(ValueError):
    """A sale that cannot be recorded; the message says why, for the person at the form."""


@dataclass(frozen=True)
class NewSale:
    """A sale as the sale page takes it: the customer (chosen by search), the unit by its serial, the plan
    (None: the product the unit was received as), the agent who sold it, whether the deposit was taken in
    cash now, and whether the unit was installed at the customer's at once."""

    customer_id: int
    serial: str
    product_id: int | None
    agent_id: int | None
    deposit_paid: bool
    installed: bool


def sell(conn: psycopg.Connection, actor: Actor, secret_key: str, sale: NewSale) -> str:
    """Sign the contract (contracts.service: its schedule, and the deposit's credit as a token when it was
    paid), record the agent who sold it, and the installation (the inventory's ``install`` move), all in
    the caller's transaction and audited; returns the account number. SaleRefused says why not (then the
    caller's transaction must be rolled back: nothing of the sale is kept)."""
    if not inventory.customer_exists(conn, sale.customer_id):
        raise SaleRefused("choose the customer again: that one is not on the register")
    serial = sale.serial.strip()
    unit_id = inventory.unit_id_of(conn, serial)
    if unit_id is None:
        raise SaleRefused(f"no unit with serial {serial[:64]!r}: pick one from the stock")
    where = inventory.unit_where(conn, unit_id)
    if where is None or where.state not in stock_moves.STEPS["install"].from_states:
        state = where.state.replace("_", " ") if where else "unknown"
        raise SaleRefused(f"unit {serial} is {state}: a unit is sold from the stock (in stock or with an agent)")
    product_id = sale.product_id or registry.product_of_unit(conn, unit_id)
    try:
        product = registry.get_product(conn, product_id)
        contract_id = contracts.sign_contract(
            conn, NewContract(sale.customer_id, unit_id, product_id, clock.today()),
            deposit_paid_on=clock.today() if sale.deposit_paid and product.deposit_amount else None,
            secret_key=secret_key,
        )  # fmt: skip
    except (LookupError, contracts.ContractRefused) as err:
        raise SaleRefused(str(err)) from None
    account = repository.account_of_contract(conn, contract_id)
    audit.record(conn, actor, "contract-signed", "contract", account,
                 after={"customer_id": sale.customer_id, "serial": serial, "product": product.code,
                        "deposit_paid": bool(sale.deposit_paid and product.deposit_amount)})  # fmt: skip
    if sale.agent_id is not None:
        try:
            record_sale(conn, actor, sale.agent_id, account)
        except (LookupError, AgentError) as err:
            raise SaleRefused(str(err)) from None
    if sale.installed:
        install_sold_unit(conn, actor, account)
    return account


def install_sold_unit(conn: psycopg.Connection, actor: Actor, account: str) -> None:
    """The install step of a sale: the contract's unit moves to its customer (inventory's ``install``
    move, audited). SaleRefused: no such contract, it is not active, or the unit cannot be installed."""
    parties = repository.contract_parties(conn, account)
    if parties is None:
        raise SaleRefused(f"no contract with account number {account!r}")
    customer_id, unit_id, state = parties
    if state != "active":
        raise SaleRefused(f"contract {account} is {state.replace('_', ' ')}: only an active contract's unit is "
                          "installed")  # fmt: skip
    try:
        stock_moves.move_unit(conn, actor, unit_id, "install", customer_id=customer_id, note=f"sold: {account}")
    except (stock_moves.MoveRefused, stock_moves.NotFound) as err:
        raise SaleRefused(str(err)) from None


def set_commission_rule(conn: psycopg.Connection, actor: Actor, rule: CommissionRule) -> None:
    """Set a product's commission rule (``product_id`` None: the default for every product without one),
    audited with the rule before and after. It counts for every commission computed from now on, past
    sales too (commissions are computed, not accrued). LookupError: no such product."""
    if rule.product_id is not None:
        registry.get_product(conn, rule.product_id)
    before = repository.commission_rule(conn, rule.product_id)
    repository.save_commission_rule(conn, rule)
    keep = {"deposit_share_bp", "payment_share_bp", "payment_months", "clawback_days"}
    audit.record(conn, actor, "commission-rule-set", "commission_rule",
                 "default" if rule.product_id is None else rule.product_id,
                 before=None if before is None else before.model_dump(include=keep),
                 after={**rule.model_dump(include=keep), "product": rule.product_code})  # fmt: skip
