"""Signing a contract (its expected ledger rows, and the deposit's credit as a token) and ending one."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg

from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.credit import service as credit
from backoffice.ledger import repository as ledger
from backoffice.registry import repository as registry
from backoffice.registry.schemas import NewContract
from backoffice.registry.service import account_number

ENDINGS = ("returned", "repossessed", "written_off")


def sign_contract(
    conn: psycopg.Connection, new: NewContract, deposit_paid_on: date | None = None, secret_key: str | None = None
) -> int:
    """Sign a contract and write its expected ledger rows (the schedule) in the caller's transaction.
    With ``deposit_paid_on`` the deposit is credited too: it buys the first period, as a token."""
    product = registry.get_product(conn, new.product_id)
    number = account_number(registry.next_contract_sequence(conn))
    contract_id = registry.insert_contract(
        conn, number, new.customer_id, new.unit_id, new.product_id, product.currency, new.signed_on
    )
    rows: list[tuple[date, str, str, int]] = []
    if product.business_model == "asset_finance":
        assert product.deposit_amount is not None and product.instalment_amount is not None
        assert product.instalment_count is not None and product.instalment_period_days is not None
        rows.append((new.signed_on, "expected", "deposit", product.deposit_amount))
        for i in range(1, product.instalment_count + 1):
            due = new.signed_on + timedelta(days=i * product.instalment_period_days)
            rows.append((due, "expected", "payment", product.instalment_amount))
    ledger.insert_entries(conn, contract_id, product.currency, rows)
    if deposit_paid_on is not None and product.deposit_amount:
        if secret_key is None:
            raise ValueError("crediting the deposit issues a token: pass the secret key")
        credit.apply_payment(conn, contract_id, product.deposit_amount, deposit_paid_on, secret_key)
    return contract_id


def end_contract(conn: psycopg.Connection, account: str, state: str, actor: Actor, note: str | None) -> str:
    """End an active contract (``state`` one of ENDINGS), audited, in the caller's transaction; returns
    the state it had. LookupError: no such contract; ValueError: it is not active."""
    old = registry.set_contract_state(conn, account, state, ("active",))
    audit.record(
        conn,
        actor,
        f"contract-{state}",
        "contract",
        account,
        before={"state": old},
        after={"state": state, "note": note},
    )
    return old
