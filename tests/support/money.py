"""The money loop's set-up, shared by the payments, credit, delivery, contracts, ledger and
mobile-money tests: two products, accounts with their units' OpenPAYGO keys, an M-Pesa C2B
confirmation, the signed webhook, and the device side of OpenPAYGO (the official decoder).
The fixtures ``money_settings`` and ``server`` are in tests/conftest.py."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import date

import httpx
import psycopg
from openpaygo import TokenType, decode_token

from backoffice import crypto
from backoffice.config import Settings
from backoffice.contracts.service import sign_contract
from backoffice.customers import repository as customers
from backoffice.payments.providers import sign
from backoffice.registry import repository as registry
from backoffice.registry.schemas import NewContract
from backoffice.registry.service import register_unit

SHORTCODE = "600638"
WEBHOOK_SECRET = "wing-test-secret"


@dataclass
class Account:
    number: str
    contract_id: int
    unit_id: int
    serial: str
    key: str
    starting_code: int
    phone: str
    customer_id: int


def make_products(conn: psycopg.Connection) -> tuple[int, int]:
    """An asset-finance home system (2,000 KES deposit, 12 x 1,500 KES every 30 days) and a
    flexible lamp (500 KES deposit for 7 days, then 35 KES a day, owned at 9,000 KES)."""
    asset = registry.insert_product(
        conn, code="SHS-A", name="SHS asset finance", business_model="asset_finance", currency="KES",
        hardware_cost=3_000_000, deposit_amount=200_000, instalment_amount=150_000, instalment_count=12,
        instalment_period_days=30, lighting_global_certified=True,
    )  # fmt: skip
    flexible = registry.insert_product(
        conn, code="LAMP", name="Lamp flexible", business_model="flexible", currency="KES", hardware_cost=450_000,
        deposit_amount=50_000, price_per_day=3_500, price_to_own=900_000, contract_days=365, deposit_days=7,
    )  # fmt: skip
    return asset, flexible


# The money tests' world is November 2026: contracts signed on the 1st, M-Pesa payments of the 22nd.
# Their modules pin the platform's clock a few days after (``pytestmark = pytest.mark.clock(MONEY_NOW)``),
# so that they mean the same whatever the date, and whatever PAYGO_NOW says.
MONEY_NOW = "2026-11-25T12:00:00+03:00"


def make_accounts(
    conn: psycopg.Connection, settings: Settings, product_id: int, n: int, prefix: str, signed_on: date | None = None
) -> list[Account]:
    """``n`` customers, each with a unit and a contract signed on ``signed_on`` (1 November 2026 unless
    given) (committed)."""
    out = []
    for i in range(n):
        phone = f"+2547{random.randrange(10_000_000, 99_999_999)}"
        customer = customers.insert_customer(conn, {"name": f"Customer {prefix}{i}", "village": "Kisumu",
                                                    "district": "Kisumu"})  # fmt: skip
        customers.replace_phones(conn, customer, [phone])
        serial = f"{prefix}{i:05d}"
        unit = register_unit(conn, settings.secret_key, serial, product_id)
        contract = sign_contract(conn, NewContract(customer, unit, product_id, signed_on or date(2026, 11, 1)))
        row = conn.execute(
            "select u.openpaygo_key_enc, u.starting_code, c.account_number from units u join contracts c"
            " on c.unit_id = u.id where u.id = %s",
            (unit,),
        ).fetchone()
        assert row is not None
        key = crypto.decrypt(settings.secret_key, row[0])
        out.append(Account(row[2], contract, unit, serial, key, row[1], phone, customer))
    conn.commit()
    return out


def confirmation(account: str, amount: str, txn: str | None = None, shortcode: str = SHORTCODE) -> dict[str, str]:
    """An M-Pesa C2B confirmation (Daraja's shape)."""
    return {
        "TransactionType": "Pay Bill", "TransID": txn or uuid.uuid4().hex[:10].upper(),
        "TransTime": "20261122063845", "TransAmount": amount, "BusinessShortCode": shortcode,
        "BillRefNumber": account, "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 126", "FirstName": "NICHOLAS", "MiddleName": "", "LastName": "",
    }  # fmt: skip


def webhook(server: str, payload: dict[str, object], secret: str = WEBHOOK_SECRET) -> httpx.Response:
    """A payment event on the signed generic webhook of provider "wing"."""
    raw = json.dumps(payload).encode()
    headers = {"X-Signature": sign(secret, raw), "content-type": "application/json"}
    return httpx.post(f"{server}/payments/webhook/wing", content=raw, headers=headers)


class Device:
    """The device side of OpenPAYGO: the official decoder with its count and used counts."""

    def __init__(self, acct: Account, count: int = 1) -> None:
        self.acct, self.count, self.used = acct, count, [count]
        self.days = 0.0
        self.unlocked = False

    def enter(self, token: str) -> bool:
        value, kind, count, used = decode_token(
            token=token, secret_key=self.acct.key, count=self.count, used_counts=self.used,
            starting_code=self.acct.starting_code,
        )  # fmt: skip
        if kind == TokenType.ADD_TIME and value is not None:
            self.days += value
        elif kind == TokenType.DISABLE_PAYG:
            self.unlocked = True
        else:
            return False
        self.count = max(self.count, count)
        self.used = used
        return True
