"""Reads of the contracts domain (its writes go through the registry, the contracts' owner)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class ContractView:
    """A contract as the page that ends it shows it."""

    account_number: str
    state: str
    signed_on: date
    customer_id: int
    customer_name: str
    serial: str
    product_code: str
    currency: str
    paid_total: int


def contract_view(conn: psycopg.Connection, account_number: str) -> ContractView | None:
    with conn.cursor(row_factory=class_row(ContractView)) as cur:
        return cur.execute(
            """select c.account_number, c.state, c.signed_on, cu.id as customer_id, cu.name as customer_name,
                      u.serial, p.code as product_code, c.currency, c.paid_total
                 from contracts c join customers cu on cu.id = c.customer_id join units u on u.id = c.unit_id
                 join products p on p.id = c.product_id
                where c.account_number = %s""",
            (account_number,),
        ).fetchone()
