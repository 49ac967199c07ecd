"""Rows and answers of the inventory (pydantic models: the repository fills them with ``class_row`` and
the API returns them as they are)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from backoffice.listing import ListQuery

Place = Literal["stock", "customer", "gone", "unknown"]
UnitState = Literal[
    "in_stock",
    "with_agent",
    "installed",
    "paid_off",
    "repossessed",
    "refurbishing",
    "written_off",
    "returned",
    "retired",
]
MoveAction = Literal[
    "assign_to_agent", "return_to_warehouse", "transfer", "install", "repossess", "refurbished", "write_off"
]


@dataclass(frozen=True)
class Where:
    """A place a unit can be: a stock location (warehouse or agent), a customer, or gone."""

    place: Place
    location_id: int | None = None
    customer_id: int | None = None


class Location(BaseModel):
    id: int
    kind: Literal["warehouse", "agent"]
    name: str
    agent_id: int | None


class UnitWhere(BaseModel):
    """A unit, its lifecycle state and where it is now."""

    unit_id: int
    serial: str
    product_code: str
    state: str
    place: str  # stock, customer, gone, unknown; 'untracked' before its first move
    location_id: int | None
    location_name: str | None
    customer_id: int | None
    customer_name: str | None
    since: datetime | None


class StockMove(BaseModel):
    id: int
    at: datetime
    actor: str
    serial: str | None
    sku: str | None
    quantity: int | None
    from_place: str | None
    from_name: str | None
    to_place: str
    to_name: str | None
    state_before: str | None
    state_after: str | None
    reason: str
    ticket_id: int | None


class UnitDetail(BaseModel):
    unit: UnitWhere
    moves: list[StockMove]


class PartCount(BaseModel):
    location_id: int
    sku: str
    name: str
    quantity: int


class LocationStock(BaseModel):
    """What one location holds: units by lifecycle state, and parts by SKU."""

    location: Location
    units: dict[str, int]
    parts: list[PartCount]


class MoveRequest(BaseModel):
    action: MoveAction = Field(
        description="assign_to_agent (agent_id), return_to_warehouse / transfer "
        "(location_id), install (customer_id), repossess (agent_id), refurbished, write_off"
    )
    location_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    agent_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    customer_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    note: str | None = Field(default=None, max_length=2000)


class PartsRequest(BaseModel):
    """Parts received at a location (no ``from_location_id``) or moved between two locations."""

    sku: str = Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")
    name: str | None = Field(default=None, min_length=1, max_length=200, description="names a new SKU")
    quantity: int = Field(ge=1, le=1_000_000)
    to_location_id: int = Field(ge=1, le=2**63 - 1)
    from_location_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class ReceiptResult(BaseModel):
    location_id: int
    received: int
    serials: list[str]


class RekeyRequest(BaseModel):
    note: str | None = Field(default=None, max_length=500, description="where and how (the bench, the tool)")


class KeySheet(BaseModel):
    """What the technician's provisioning tool writes into a unit at the depot (docs/unit_keys.md): shown
    once, in the answer to the re-keying, never kept anywhere but the unit's encrypted key."""

    serial: str
    generation: int = Field(description="how many times the unit was re-keyed")
    secret_key: str = Field(description="the OpenPAYGO secret, 32 hex digits")
    starting_code: int
    token_count: int = Field(description="the token count the unit is set to; its next token is above it")


class InventoryList(ListQuery):
    """The inventory page's unit list (backoffice/listing.py): by serial, state, place or stock location."""

    SORTS: ClassVar[tuple[str, ...]] = ("serial", "product", "state", "place", "since")
    DEFAULT_SORT: ClassVar[str] = "serial"

    q: str = Field("", max_length=64, description="part of a serial")
    state: Literal["in_stock", "with_agent", "installed", "paid_off", "repossessed", "refurbishing", "written_off",
                   "returned", "retired"] | None = None  # fmt: skip
    place: Literal["stock", "customer", "gone", "unknown", "untracked"] | None = None
    location_id: int | None = Field(None, ge=1, le=2**63 - 1)

    @property
    def asked(self) -> bool:
        """Whether any unit was asked for (the page lists units only then)."""
        return bool(self.q.strip() or self.state or self.place or self.location_id)
