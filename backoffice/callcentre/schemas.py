"""The unit page as data: what the page renders and ``GET /api/v1/units/{serial}`` returns."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from backoffice.customers.schemas import CallNote, Customer

JsonScalar = str | int | float | bool | None


class UnitInfo(BaseModel):
    id: int
    serial: str
    state: str
    product_code: str
    product_name: str
    installed_at: datetime | None
    latitude: float | None
    longitude: float | None


class ContractInfo(BaseModel):
    id: int
    account_number: str
    state: str
    signed_on: date
    currency: str
    paid_total: int = Field(description="minor units credited so far")
    price: int | None = Field(description="what owning the unit costs (minor units); None: no price to own")
    balance: int | None = Field(description="price less paid_total: what is left to pay")
    expected_to_date: int | None = Field(description="the schedule's expected rows due by today (asset finance)")
    arrears: int | None = Field(description="expected to date less paid, when positive")
    days_granted: int = Field(description="days of light that payments bought")
    goodwill_days: int = Field(description="days given free by the call centre")
    credit_end: datetime | None = Field(
        description="when the unit's light stops as the contract's tokens gave it (docs/credit_end.md); None: no "
        "token yet, or never (unlocked_for_good)"
    )
    paid_until: date | None = Field(description="the company's day of credit_end: what the receipt and reminders say")
    unlocked_for_good: bool = Field(description="DISABLE_PAYG was issued: the light never stops")


class UnitStatus(BaseModel):
    last_ts: datetime | None = Field(description="time of the newest reading")
    last_received_at: datetime | None
    batt_v: float | None
    soc: float | None
    credit_s: int | None = Field(description="credit left on the unit at its newest reading, seconds")
    credit_until: datetime | None = Field(description="the newest reading's time + its credit left")
    locked: bool | None
    online: bool | None = Field(description="from the unit's status topic and last will; None: never announced")
    online_since: datetime | None
    token_acked_at: datetime | None = Field(
        default=None,
        description="when the unit acknowledged a token after its newest report: locked, credit_s and "
        "credit_until then come from that report and the tokens acknowledged since (None: from the report)",
    )
    reported_locked: bool | None = Field(default=None, description="what the newest report itself said")
    reported_credit_s: int | None = Field(default=None, description="the credit the newest report itself gave")


class Reading(BaseModel):
    ts: datetime
    batt_v: float | None
    soc: float | None
    pv_wh: float | None
    load_wh: float | None


class Day(BaseModel):
    day: date
    pv_wh: float | None
    load_wh: float | None
    min_batt_v: float | None
    max_batt_v: float | None
    hours_low_soc: float | None = Field(description="hours reported below 20 % charge")
    reports: int


class Payment(BaseModel):
    """A payment of the contract: a completed ledger row (``in_ledger``), with the inbox item it came from
    when it came through the payment inbox; or an inbox item that has not reached the ledger (held, ...)."""

    entry_id: int | None = Field(description="the ledger row (None: not in the ledger)")
    id: int | None = Field(description="the payment inbox item (None: recorded without one, e.g. at signing)")
    paid_on: date = Field(description="the ledger row's date (or the day it was paid)")
    type: str | None = Field(description="the ledger row's type: deposit, payment, return, ...")
    received_at: datetime | None
    paid_at: datetime | None
    provider: str | None
    provider_txn_id: str | None
    amount: int | None = Field(description="minor units; negative for a reversal or a refund")
    currency: str | None
    status: str = Field(description="the inbox item's status; 'credited' for a ledger row without one")
    reason: str | None
    in_ledger: bool


class Token(BaseModel):
    id: int
    token_type: str
    value_days: int
    count: int
    token: str
    created_at: datetime
    goodwill: bool = Field(description="given free by the call centre")
    sms_state: str | None
    unit_state: str | None = Field(description="the unit command's delivery: pending, sent, acked, failed, history")
    unit_attempts: int | None = Field(default=None, description="times the unit command was sent")
    unit_error: str | None = Field(default=None, description="why the unit command failed (or its last error)")
    unit_next_attempt_at: datetime | None = Field(
        default=None, description="when the unit command is sent again, while it waits for an acknowledgement"
    )


class Event(BaseModel):
    ts: datetime
    kind: str
    detail: dict[str, JsonScalar]


class Sms(BaseModel):
    id: int
    recipient: str
    body: str
    state: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class GoodwillGrant(BaseModel):
    id: int
    created_at: datetime
    days: int
    reason: str
    granted_by: str
    token_id: int


class AlertFact(BaseModel):
    """An open fleet-health alert of the unit, as the first screen needs it (the health domain says which
    kinds are faults; the web app hands them in: ``app.state.unit_alerts``)."""

    id: int
    kind: str
    opened_on: date
    fault: bool = Field(description="a fault of the unit (a technician's case), not a coaching matter")


class LatestTicket(BaseModel):
    id: int
    kind: str
    state: str
    agent_name: str | None
    opened_at: datetime
    due_at: datetime
    next_visit_on: date | None = None


class Reason(BaseModel):
    text: str
    since: datetime | date | None = None


class Answer(BaseModel):
    """The first screen: why the light is on or off, since when, and what fits (docs/unit_page.md)."""

    state: Literal["unlocked", "locked", "offline", "tampered", "faulty", "no_contract"]
    headline: str
    since: datetime | date | None
    reasons: list[Reason] = Field(description="every fact that applies, the headline's first")
    actions: list[str] = Field(
        description="what fits, best first: resend, goodwill, ticket:<kind>, note (the page renders each)"
    )


class UnitPage(BaseModel):
    """Everything the call centre sees about one unit; ``sms`` is None for roles that may not read it."""

    as_of: datetime = Field(description="the charts end here: the newest reading, or now")
    unit: UnitInfo
    customer: Customer | None
    contract: ContractInfo | None
    status: UnitStatus
    readings: list[Reading] = Field(description="the raw readings of the 7 days up to as_of")
    days: list[Day] = Field(description="30 daily rollups up to as_of's day")
    payments: list[Payment]
    tokens: list[Token]
    goodwill: list[GoodwillGrant]
    events: list[Event]
    notes: list[CallNote]
    sms: list[Sms] | None
    alerts: list[AlertFact] = Field(default_factory=list, description="open fleet-health alerts, newest first")
    latest_ticket: LatestTicket | None = None
    answer: Answer | None = None


class GoodwillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(ge=1, le=995)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class GoodwillGranted(BaseModel):
    grant_id: int
    token_id: int
    token: str
    days: int


class Resent(BaseModel):
    token_id: int
    deliveries_queued: int
