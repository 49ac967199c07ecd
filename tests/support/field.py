"""Field operations the tests set up alike: agents with logins and stock, units received at the
warehouse, a customer's installed unit sold by an agent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from backoffice import clock
from backoffice.agents import service as agents
from backoffice.agents.schemas import Agent, NewAgent
from backoffice.contracts import service as contracts
from backoffice.inventory import receipt
from backoffice.inventory import service as inventory
from backoffice.registry import repository, service
from backoffice.registry.schemas import NewContract
from tests.support.contracts import kisumu_customer
from tests.support.staff import TEST_ACTOR, user


def main_warehouse(conn: Any) -> int:
    return int(conn.execute("select min(id) from stock_locations where kind = 'warehouse'").fetchone()[0])


def agent(conn: Any, database_url: str, username: str, code: str, villages: tuple[str, ...] = ("Kisumu",)) -> Agent:
    """A field agent with a login (committed, so it can log in) and a stock location; in the caller's
    transaction, which the caller commits."""
    user(database_url, username, "field_agent")
    return agents.create_agent(
        conn, TEST_ACTOR, NewAgent(username=username, code=code, name=username.title(), areas=list(villages))
    )


def parts_for(conn: Any, agent_: Agent, sku: str = "BAT-12V", quantity: int = 3) -> None:
    """``quantity`` of a part received at the warehouse and handed to the agent."""
    inventory.add_parts(conn, TEST_ACTOR, sku, quantity, main_warehouse(conn), name="Battery 12 V 7 Ah")
    assert agent_.location_id is not None
    inventory.add_parts(conn, TEST_ACTOR, sku, quantity, agent_.location_id, from_location_id=main_warehouse(conn))


def received(conn: Any, secret_key: str, *serials: str, product: str = "L") -> list[int]:
    """Units received at the main warehouse (the product ``product`` must exist)."""
    body = "serial,product\n" + "".join(f"{s},{product}\n" for s in serials)
    receipt.receive(conn, TEST_ACTOR, secret_key, main_warehouse(conn), body.encode())
    return [int(conn.execute("select id from units where serial = %s", (s,)).fetchone()[0]) for s in serials]


def lamp_product(conn: Any) -> int:
    """The flexible-PAYG lamp of tests/support/contracts.py (35 KES a day), made once."""
    found = conn.execute("select id from products where code = 'L'").fetchone()
    if found:
        return int(found[0])
    return repository.insert_product(
        conn, code="L", name="l", business_model="flexible", currency="KES", price_per_day=3_500, deposit_amount=0
    )


def sold_lamp(conn: Any, secret_key: str, agent_: Agent, serial: str, customer: str) -> tuple[int, str, int]:
    """A lamp installed 30 days ago for a customer in Kisumu under a contract the agent sold (registered
    the old way, with no location row until its first move): (contract id, account, unit id)."""
    product = lamp_product(conn)
    buyer = kisumu_customer(conn, customer)
    unit_id = service.register_unit(
        conn, secret_key, serial, product, installed_at=clock.utc_now() - timedelta(days=30)
    )
    contract_id = contracts.sign_contract(conn, NewContract(buyer, unit_id, product, clock.today()))
    account = str(conn.execute("select account_number from contracts where id = %s", (contract_id,)).fetchone()[0])
    agents.record_sale(conn, TEST_ACTOR, agent_.id, account)
    return contract_id, account, unit_id
