"""Contracts the tests set up alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from backoffice import crypto
from backoffice.contracts import service as contracts
from backoffice.customers import repository as customers_repo
from backoffice.registry import repository, service
from backoffice.registry.schemas import NewContract


def lamp_contract(
    conn: Any, secret_key: str, serial: str, customer: str, installed_days_ago: int
) -> tuple[int, str, int]:
    """A flexible-PAYG lamp (35 KES a day, no deposit) installed for a customer in Kisumu, in the
    caller's transaction: (contract id, the unit's OpenPAYGO key, its starting code)."""
    product = repository.insert_product(conn, code="L", name="l", business_model="flexible", currency="KES",
                                        price_per_day=3_500, deposit_amount=0)  # fmt: skip
    buyer = customers_repo.insert_customer(
        conn, {"name": customer, "village": "Kisumu", "district": "Kisumu", "latitude": 0.0, "longitude": 34.7}
    )
    customers_repo.replace_phones(conn, buyer, ["+254700000001"])
    unit_id = service.register_unit(conn, secret_key, serial, product,
                                    installed_at=datetime.now(UTC) - timedelta(days=installed_days_ago))  # fmt: skip
    contract = contracts.sign_contract(conn, NewContract(buyer, unit_id, product, date.today()))
    key_enc, starting_code = conn.execute(
        "select openpaygo_key_enc, starting_code from units where id = %s", (unit_id,)
    ).fetchone()
    return contract, crypto.decrypt(secret_key, key_enc), int(starting_code)
