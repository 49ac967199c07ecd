"""The platform's one clock: the UTC instant, and the company's business day in its own time zone.

Nothing else reads the machine's clock (ruff's banned-api rule in pyproject.toml says so). Outside
production ``PAYGO_NOW`` (an ISO instant with its offset, e.g. ``2028-02-29T09:00:00+03:00``) moves
"now" there: it starts at that instant and runs on. The moment it started is kept beside it in
``PAYGO_NOW_ANCHOR`` (the machine's epoch seconds), so that every process the first one starts
(the web app, ingest workers, Celery workers) shares one timeline rather than each starting anew.
The database is told the same offset per connection (``paygo.clock_offset``, read by the SQL
function ``paygo_now()`` of migration 0032), so that column defaults and queries agree with Python.

Tests pin the clock with time-machine: it moves what this module reads, so pinned tests and
``PAYGO_NOW`` compose (a pin wins: see ``tests/support/clock.py``).
"""

from __future__ import annotations

import functools
import os
import time
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NOW_ENV = "PAYGO_NOW"
ANCHOR_ENV = "PAYGO_NOW_ANCHOR"
TIMEZONE_ENV = "PAYGO_TIMEZONE"
# The company's time zone when PAYGO_TIMEZONE is unset: the demo company is in Kenya.
DEFAULT_TIMEZONE = "Africa/Nairobi"


class ClockError(ValueError):
    """PAYGO_NOW or PAYGO_TIMEZONE cannot be understood, or PAYGO_NOW was given to production."""


def _machine_now() -> datetime:
    # The only read of the machine's clock in the platform.
    return datetime.now(UTC)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant that states its offset (``Z`` or ``+03:00``); a bare local time is refused."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ClockError(f"{NOW_ENV}={text!r} is not an ISO 8601 instant such as 2028-02-29T09:00:00+03:00") from None
    if at.tzinfo is None:
        raise ClockError(f"{NOW_ENV}={text!r} has no offset: write it as 2028-02-29T09:00:00+03:00 or ...Z")
    return at.astimezone(UTC)


@functools.cache
def _offset_from_env(now_text: str, anchor_text: str) -> timedelta:
    return parse_instant(now_text) - datetime.fromtimestamp(float(anchor_text), UTC)


def offset() -> timedelta:
    """How far the platform's "now" is from the machine's: zero unless PAYGO_NOW is set."""
    now_text = os.environ.get(NOW_ENV, "").strip()
    if not now_text:
        return timedelta(0)
    if os.environ.get("PAYGO_ENVIRONMENT", "").strip() == "production":
        raise ClockError(f"{NOW_ENV} moves the platform's clock and is refused in production: unset it")
    anchor = os.environ.get(ANCHOR_ENV, "").strip()
    if not anchor:
        # The first process to read it fixes the moment it started; its children inherit the anchor.
        anchor = repr(_machine_now().timestamp())
        os.environ[ANCHOR_ENV] = anchor
    try:
        return _offset_from_env(now_text, anchor)
    except ValueError as e:
        raise ClockError(f"{ANCHOR_ENV}={anchor!r}: {e}") from None


def utc_now() -> datetime:
    """The instant, in UTC."""
    return _machine_now() + offset()


def machine_now() -> datetime:
    """The machine's own clock, unmoved by PAYGO_NOW, for what other software checks against its own
    clock: a TLS certificate's validity is judged by every peer on theirs. Never for the platform's
    own decisions (those take utc_now())."""
    return _machine_now()


def monotonic() -> float:
    """Seconds for measuring durations (never moved by PAYGO_NOW or a pinned test clock)."""
    return time.monotonic()


@functools.cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ClockError(
            f"{TIMEZONE_ENV}={name!r} is not a time zone of the IANA database, e.g. Africa/Nairobi or Asia/Phnom_Penh"
        ) from None


def company_zone(name: str | None = None) -> tzinfo:
    """The company's time zone: ``name``, else PAYGO_TIMEZONE, else Africa/Nairobi."""
    return _zone(name or os.environ.get(TIMEZONE_ENV, "").strip() or DEFAULT_TIMEZONE)


def business_day(at: datetime, zone: str | None = None) -> date:
    """The company's calendar day at the instant ``at`` (31 Dec 23:30 UTC is 1 Jan in Nairobi)."""
    return at.astimezone(company_zone(zone)).date()


def today(zone: str | None = None) -> date:
    """The company's business day now."""
    return business_day(utc_now(), zone)


def local_now(zone: str | None = None) -> datetime:
    """Now, on the company's wall clock (for quiet hours, business hours)."""
    return utc_now().astimezone(company_zone(zone))


def start_of_day(day: date, zone: str | None = None) -> datetime:
    """The UTC instant the company's day ``day`` begins."""
    return datetime(day.year, day.month, day.day, tzinfo=company_zone(zone)).astimezone(UTC)


def end_of_day(day: date, zone: str | None = None) -> datetime:
    """The UTC instant the company's day ``day`` ends (the next day's start)."""
    return start_of_day(day + timedelta(days=1), zone)
