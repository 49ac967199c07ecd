"""Rows and answers of tickets (pydantic models, filled by ``class_row``, returned by the API)."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from backoffice.inventory.schemas import PartCount, StockMove, UnitWhere
from backoffice.listing import ListQuery

Kind = Literal["repair", "battery_swap", "installation", "repossession", "customer_education"]
KINDS: tuple[Kind, ...] = ("repair", "battery_swap", "installation", "repossession", "customer_education")
Source = Literal["call_centre", "alert", "field_agent"]
State = Literal["open", "assigned", "done", "cancelled"]
# A visit that leaves the ticket open (migration 0062): the agent comes back.
VisitOutcome = Literal["customer_not_home", "rescheduled", "needs_part"]
VISIT_OUTCOMES: dict[str, str] = {
    "customer_not_home": "customer not home",
    "rescheduled": "rescheduled",
    "needs_part": "needs a part: coming back",
}


class Ticket(BaseModel):
    id: int
    kind: str
    source: str
    state: str
    unit_id: int
    serial: str
    account_number: str | None
    contract_state: str | None
    customer_id: int | None
    customer_name: str | None
    phone: str | None
    village: str | None
    agent_id: int | None
    agent_name: str | None
    note: str | None
    outcome: str | None
    opened_by: str
    opened_at: datetime
    due_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    breached: bool = Field(description="closed after its SLA's due time, or still open past it")
    elapsed_hours: float | None = Field(
        default=None, description="hours open round the clock (24/7), up to closing or now"
    )
    working_hours_elapsed: float | None = Field(
        default=None, description="of those, the company's working hours (what the SLA counts: due_at)"
    )


class PartUsed(BaseModel):
    sku: str
    name: str
    quantity: int


class NewVisit(BaseModel):
    """A visit that does not close the ticket: it stays open, with the same agent and SLA."""

    outcome: VisitOutcome
    next_visit_on: date | None = Field(default=None, description="the day agreed for the next visit")
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _day_for_rescheduled(self) -> NewVisit:
        if self.outcome == "rescheduled" and self.next_visit_on is None:
            raise ValueError("a rescheduled visit needs the day of the next visit")
        return self


class Visit(BaseModel):
    id: int
    ticket_id: int
    outcome: str
    next_visit_on: date | None
    note: str | None
    recorded_by: str
    recorded_at: datetime


class TicketDetail(BaseModel):
    ticket: Ticket
    parts_used: list[PartUsed]
    unit: UnitWhere | None
    agent_parts: list[PartCount] = Field(description="what the assigned agent carries")
    visits: list[Visit] = Field(default_factory=list, description="visits that left the ticket open, oldest first")


class NewTicket(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    kind: Kind
    note: str | None = Field(default=None, max_length=2000)
    agent_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="assign at once (call centre)")


class Assignment(BaseModel):
    agent_id: int = Field(ge=1, le=2**63 - 1)


class PartUse(BaseModel):
    sku: str = Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")
    quantity: int = Field(default=1, ge=1, le=1000)


class Closing(BaseModel):
    outcome: Literal["done", "cancelled"]
    note: str | None = Field(default=None, max_length=2000, description="what the visit found and did")
    parts: list[PartUse] = Field(default_factory=list, max_length=20, description="taken from the agent's stock")


class UnitPanel(BaseModel):
    """For the unit page: where the unit is in its lifecycle, its open tickets and its last stock moves."""

    unit: UnitWhere | None
    open_tickets: list[Ticket]
    recent_tickets: list[Ticket]
    moves: list[StockMove]


class TicketList(ListQuery):
    """The tickets list's query (backoffice/listing.py): no state means open and assigned ones."""

    SORTS: ClassVar[tuple[str, ...]] = ("due", "opened", "closed", "id", "kind", "state", "customer", "village",
                                        "agent")  # fmt: skip
    DEFAULT_SORT: ClassVar[str] = "due"

    state: State | Literal["all"] | None = None
    kind: Kind | None = None
    breached: bool | None = None
    agent_id: int | None = Field(None, ge=1, le=2**63 - 1)
    village: str = Field("", max_length=200, description="part of the customer's village")
