"""Registry operations: register units, sign contracts (writing the expected schedule)."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

import psycopg
from stdnum import luhn

from backoffice import crypto
from backoffice.credit import service as credit
from backoffice.ledger import repository as ledger
from backoffice.registry import repository
from backoffice.registry.schemas import NewContract


def account_number(sequence: int) -> str:
    """Customer-facing account number: 7 digits and a Luhn check digit, so a typo is caught."""
    base = f"{sequence:07d}"
    return base + luhn.calc_check_digit(base)


def is_valid_account_number(text: str) -> bool:
    return text.isdigit() and len(text) == 8 and luhn.is_valid(text)


def register_unit(
    conn: psycopg.Connection,
    secret_key: str,
    serial: str,
    product_id: int,
    lat: float | None = None,
    lon: float | None = None,
    installed_at: datetime | None = None,
) -> int:
    """A new unit with its own OpenPAYGO secret (encrypted at rest) and starting code."""
    key_hex = secrets.token_hex(16)
    starting_code = secrets.randbelow(900_000_000) + 100_000_000
    return repository.insert_unit(
        conn, serial, product_id, crypto.encrypt(secret_key, key_hex), starting_code, lat, lon, installed_at
    )


def sign_contract(
    conn: psycopg.Connection, new: NewContract, deposit_paid_on: date | None = None, secret_key: str | None = None
) -> int:
    """Sign a contract and write its expected ledger rows (the schedule) in the caller's transaction.
    With ``deposit_paid_on`` the deposit is credited too: it buys the first period, as a token."""
    product = repository.get_product(conn, new.product_id)
    number = account_number(repository.next_contract_sequence(conn))
    contract_id = repository.insert_contract(
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
