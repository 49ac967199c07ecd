"""Contracts the tests set up alike."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from backoffice import clock, crypto
from backoffice.contracts import service as contracts
from backoffice.customers import repository as customers
from backoffice.registry import repository, service
from backoffice.registry.schemas import NewContract


def kisumu_customer(conn: Any, name: str, phone: str = "+254700000001") -> int:
    """A customer in Kisumu with one phone number, in the caller's transaction: their id."""
    buyer = customers.insert_customer(conn, {"name": name, "village": "Kisumu", "district": "Kisumu",
                                             "latitude": 0.0, "longitude": 34.7})  # fmt: skip
    customers.replace_phones(conn, buyer, [phone])
    return buyer


def lamp_contract(
    conn: Any, secret_key: str, serial: str, customer: str, installed_days_ago: int
) -> tuple[int, str, int]:
    """A flexible-PAYG lamp (35 KES a day, no deposit) installed for a customer in Kisumu, in the
    caller's transaction: (contract id, the unit's OpenPAYGO key, its starting code)."""
    product = repository.insert_product(conn, code="L", name="l", business_model="flexible", currency="KES",
                                        price_per_day=3_500, deposit_amount=0)  # fmt: skip
    buyer = kisumu_customer(conn, customer)
    unit_id = service.register_unit(conn, secret_key, serial, product,
                                    installed_at=clock.utc_now() - timedelta(days=installed_days_ago))  # fmt: skip
    contract = contracts.sign_contract(conn, NewContract(buyer, unit_id, product, clock.today()))
    key_enc, starting_code = conn.execute(
        "select openpaygo_key_enc, starting_code from units where id = %s", (unit_id,)
    ).fetchone()
    return contract, crypto.decrypt(secret_key, key_enc), int(starting_code)
