"""Rows and inputs of the registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import Field

from backoffice.listing import ListQuery


@dataclass(frozen=True)
class Product:
    id: int
    code: str
    name: str
    business_model: str
    currency: str
    hardware_cost: int
    price_per_day: int | None
    deposit_amount: int | None
    instalment_amount: int | None
    instalment_count: int | None
    instalment_period_days: int | None
    panel_wp: int
    battery_chemistry: str


@dataclass(frozen=True)
class UnitSummary:
    """A unit as the call-centre list shows it: who has it and what it last said."""

    serial: str
    product_code: str
    state: str
    customer_name: str | None
    account_number: str | None
    latitude: float | None
    longitude: float | None
    last_ts: datetime | None
    last_received_at: datetime | None
    batt_v: float | None
    soc: float | None
    credit_s: int | None
    locked: bool | None
    online: bool | None  # from the unit's status topic and last will; None: never announced
    online_since: datetime | None
    customer_id: int | None
    area: str | None  # the customer's village, district
    in_arrears: bool  # an active contract whose paid credit has run out


UnitState = Literal["in_stock", "with_agent", "installed", "paid_off", "repossessed", "refurbishing",
                    "written_off", "returned", "retired"]  # fmt: skip


class UnitList(ListQuery):
    """The units list's query: a search text, filters, and the order (backoffice/listing.py)."""

    SORTS: ClassVar[tuple[str, ...]] = ("serial", "customer", "account", "product", "area", "last_report",
                                        "battery", "charge", "credit", "state")  # fmt: skip
    DEFAULT_SORT: ClassVar[str] = "serial"

    q: str = Field("", max_length=200, description="part of a serial or name, an account or a phone (E.164)")
    state: UnitState | None = None
    locked: bool | None = None
    arrears: bool | None = Field(None, description="true: only units whose active contract's credit has run out")
    area: str = Field("", max_length=200, description="part of the customer's village or district")


@dataclass(frozen=True)
class InstalledUnit:
    """Where an installed unit is and the kit it has (panel and battery)."""

    serial: str
    latitude: float
    longitude: float
    panel_wp: int
    battery_ah: float
    battery_chemistry: str


@dataclass(frozen=True, kw_only=True)
class UnitTerms(InstalledUnit):
    """An installed unit, its kit, and the terms of its active contract (if any): what a payment buys."""

    unit_id: int
    installed_at: datetime
    contract_id: int | None
    business_model: str
    price_per_day: int | None
    instalment_amount: int | None
    instalment_period_days: int | None


@dataclass(frozen=True)
class ContractRef:
    """A contract found by its account number."""

    id: int
    currency: str


@dataclass(frozen=True)
class NewContract:
    customer_id: int
    unit_id: int
    product_id: int
    signed_on: date
