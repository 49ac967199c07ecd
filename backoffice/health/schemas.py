"""What the health pages, API and the unit page's panel show."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, field_validator

from backoffice.health.rules import KINDS
from backoffice.listing import ListQuery

CollectionsClass = Literal["cant_use", "not_using", "using_without_paying"]


class Alert(BaseModel):
    id: int
    unit_id: int
    serial: str
    kind: str
    level: int
    opened_on: date
    last_seen_on: date
    resolved_on: date | None
    evidence: dict[str, Any]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    technician: bool  # goes to a technician (a ticket) rather than the call centre


class SohPoint(BaseModel):
    day: date
    soh: float


class Collections(BaseModel):
    unit_id: int
    class_: CollectionsClass
    since: date
    as_of: date
    evidence: dict[str, Any]


class OutreachItem(BaseModel):
    unit_id: int
    serial: str
    priority: int
    reason: str
    suggested_action: str
    script_hint: str
    as_of: date


class UnitPanel(BaseModel):
    """The unit page's health panel: open alerts with their evidence, the SoH series, the collections class."""

    unit_id: int
    open_alerts: list[Alert]
    soh: list[SohPoint]
    collections: Collections | None


class AlertList(ListQuery):
    """The open alerts list's query on the fleet-health page (backoffice/listing.py)."""

    SORTS: ClassVar[tuple[str, ...]] = ("opened", "last_seen", "level", "kind", "serial")
    DEFAULT_SORT: ClassVar[str] = "-opened"

    kind: str | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value is not None and value not in KINDS:
            raise ValueError(f"must be one of {', '.join(KINDS)}")
        return value
