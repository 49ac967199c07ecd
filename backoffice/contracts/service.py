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


class ContractRefused(ValueError):
    """A contract that cannot be signed; the message says why, for people."""


def _sellable(conn: psycopg.Connection, unit_id: int) -> None:
    """A unit is sold to one customer at a time, and under a key of its own: one that came back is re-keyed
    at the depot first (inventory.service.rekey_unit), or its old customer's tokens (a DISABLE_PAYG among
    them) would go on working on it. The unit's row stays locked, so two sales of it cannot cross."""
    serial = registry.lock_unit(conn, unit_id)
    holder = registry.contract_holding_unit(conn, unit_id)
    if holder is not None:
        raise ContractRefused(f"unit {serial} is sold already: contract {holder[0]} is {holder[1].replace('_', ' ')}")
    used = registry.contract_under_current_key(conn, unit_id)
    if used is not None:
        raise ContractRefused(
            f"unit {serial} was sold under its current OpenPAYGO key (contract {used[0]}, {used[1].replace('_', ' ')}):"
            f" re-key it at the depot before it is sold again (POST /api/v1/inventory/units/{serial}/rekey)"
        )


def sign_contract(
    conn: psycopg.Connection, new: NewContract, deposit_paid_on: date | None = None, secret_key: str | None = None
) -> int:
    """Sign a contract and write its expected ledger rows (the schedule) in the caller's transaction.
    With ``deposit_paid_on`` the deposit is credited too: it buys the first period, as a token.
    ContractRefused: the unit is sold already, or was sold under the key it has (re-key it first)."""
    _sellable(conn, new.unit_id)
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
