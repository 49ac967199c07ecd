"""A small company for the task pages' tests: a solar kit sold on asset finance (a deposit, then weekly
instalments), units received at the warehouse, an agent, and a customer with an active contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backoffice import clock
from backoffice.agents import service as agents
from backoffice.agents.schemas import NewAgent
from backoffice.contracts import service as contracts
from backoffice.registry import repository
from backoffice.registry.schemas import NewContract
from tests.support.contracts import kisumu_customer
from tests.support.field import received
from tests.support.staff import TEST_ACTOR


@dataclass(frozen=True)
class Company:
    product_id: int
    agent_id: int
    serials: list[str]
    accounts: list[str]  # active contracts of customers already on the register


def small_company(conn: Any, secret_key: str, *, contracts_: int = 2) -> Company:
    """In the caller's transaction (the caller commits)."""
    product = repository.insert_product(
        conn, code="SHS-T", name="Solar kit", business_model="asset_finance", currency="KES",
        deposit_amount=200_000, instalment_amount=50_000, instalment_count=40, instalment_period_days=7,
    )  # fmt: skip
    serials = [f"TSK{i:06d}" for i in range(1, 6)]
    unit_ids = received(conn, secret_key, *serials, product="SHS-T")
    agent = agents.create_agent(conn, TEST_ACTOR, NewAgent(code="KE-T1", name="Grace Akinyi", areas=["Kisumu"]))
    accounts = []
    for i in range(contracts_):
        buyer = kisumu_customer(conn, ["Juma Barasa", "Halima Mohamed", "Akinyi Ouma"][i], f"+25470000010{i}")
        unit = unit_ids[-1 - i]
        contract = contracts.sign_contract(conn, NewContract(buyer, unit, product, clock.today()))
        accounts.append(str(conn.execute("select account_number from contracts where id = %s",
                                         (contract,)).fetchone()[0]))  # fmt: skip
    return Company(product, agent.id, serials[: len(serials) - contracts_], accounts)
