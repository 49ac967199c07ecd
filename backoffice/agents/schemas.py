"""Rows and answers of the agents domain (pydantic models, filled by ``class_row``, returned by the API)."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from backoffice.listing import ListQuery


class Agent(BaseModel):
    id: int
    user_id: int | None
    username: str | None
    code: str
    name: str
    kind: str
    phone: str | None
    active: bool
    areas: list[str]
    location_id: int | None


class Sale(BaseModel):
    contract_id: int
    account_number: str
    customer_id: int
    customer_name: str
    village: str | None
    serial: str
    product_code: str
    state: str
    signed_on: date


class Customer(BaseModel):
    id: int
    name: str
    phone: str | None
    village: str | None
    district: str | None


class Commission(BaseModel):
    """What an agent earned (deposit and payment shares), lost to claw-backs, was paid, and is due."""

    agent_id: int
    agent_code: str
    agent_name: str
    currency: str
    earned: int
    clawed_back: int
    paid: int
    due: int


class Money(BaseModel):
    currency: str
    amount: int


class AgentPage(BaseModel):
    agent: Agent
    sales: int
    recent_sales: list[Sale]
    active_units: int
    par30: float | None = Field(description="PAR 30 by value of the agent's customers (docs/kpi_definitions.md)")
    par30_at_risk: int
    par30_active: int
    collections_this_month: list[Money]
    commissions: list[Commission]


class NewAgent(BaseModel):
    username: str | None = Field(default=None, max_length=63, description="a staff login with the field_agent role")
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["sales", "field", "sales_and_field"] = "field"
    phone: str | None = Field(default=None, max_length=40, pattern=r"^[0-9+ -]{3,40}$")
    areas: list[str] = Field(
        default_factory=list, max_length=50, description="villages, each 'Village' or 'Village/District'"
    )


class NewSale(BaseModel):
    account_number: str = Field(min_length=1, max_length=40)


class NewPayout(BaseModel):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    note: str | None = Field(default=None, max_length=2000)


class Payout(BaseModel):
    id: int
    agent_id: int
    currency: str
    amount: int
    paid_at: datetime
    paid_by: str


class SaleSummary(BaseModel):
    """A contract as the sale's confirmation page shows it: who bought what, who sold it, where the unit is."""

    account_number: str
    contract_state: str
    signed_on: date
    customer_id: int
    customer_name: str
    village: str | None
    serial: str
    unit_state: str
    unit_place: str | None
    product_code: str
    product_name: str
    currency: str
    deposit_amount: int | None
    deposit_paid: int
    agent_code: str | None
    agent_name: str | None


class CommissionRule(BaseModel):
    """A share of the deposit and of each payment for ``payment_months`` (basis points), all of it clawed
    back when the contract ends in default within ``clawback_days``; ``product_id`` None: every other product."""

    product_id: int | None
    product_code: str | None
    deposit_share_bp: int = Field(ge=0, le=10_000)
    payment_share_bp: int = Field(ge=0, le=10_000)
    payment_months: int = Field(ge=0, le=120)
    clawback_days: int = Field(ge=0, le=3650)


class AgentList(ListQuery):
    """The agents list's query (backoffice/listing.py)."""

    SORTS: ClassVar[tuple[str, ...]] = ("name", "code", "kind", "active")
    DEFAULT_SORT: ClassVar[str] = "name"

    kind: Literal["sales", "field", "sales_and_field"] | None = None
    active: bool | None = None
    area: str = Field("", max_length=200, description="part of a village or district the agent serves")
