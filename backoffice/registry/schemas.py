"""Rows and inputs of the registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


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
