"""What the SMS log of a unit shows (the unit page's panel and the API)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class SmsEntry(BaseModel):
    outbox_id: int
    kind: str = Field(description="receipt, paid_off, token, token_resend or reminder")
    recipient: str
    body: str
    state: str = Field(description="pending, acked (handed to the gateway), failed, or history (a backfilled past)")
    created_at: datetime
    sent_at: datetime | None
    encoding: str = Field(description="gsm7 or ucs2")
    segments: int = Field(description="SMS segments the text is sent as")


class SmsLog(BaseModel):
    """The SMS sent (or queued) to a unit's customers, newest first."""

    unit_id: int
    serial: str
    entries: list[SmsEntry]


class ReminderRun(BaseModel):
    """What one run of the reminder job did."""

    today: date
    offsets: list[int]
    considered: int
    queued: int
    already_sent: int
    no_phone: int
