"""The company's hours on its own wall clock (``PAYGO_TIMEZONE``): its working hours and holidays, which
ticket SLAs count (``WorkingHours``), and the quiet hours in which customers get no reminder or notice
by SMS (``QuietHours``). Pure functions of instants: the caller reads the clock (backoffice/clock.py).

Working hours are a weekly schedule, e.g. ``Mon-Sat 08:00-18:00`` (several parts separated by ``;``:
``Mon-Fri 08:00-17:00; Sat 09:00-13:00``), or ``24/7``. A holiday is a whole day off. Each day's
opening and closing are read on the company's wall clock, so a day that loses or gains an hour to a
clock change counts the hours the office was really open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROUND_THE_CLOCK = "24/7"
_HHMM = r"([01]?\d|2[0-4]):([0-5]\d)"
_PART = re.compile(rf"^\s*(?:(\w{{3}})(?:\s*-\s*(\w{{3}}))?\s+)?{_HHMM}\s*-\s*{_HHMM}\s*$")


class HoursError(ValueError):
    """A schedule, window or holiday list that cannot be read; the message shows the expected form."""


def _clock_time(hours: str, minutes: str, what: str) -> time:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        return time.max
    if h > 23:
        raise HoursError(f"{what}: {hours}:{minutes} is no time of day")
    return time(h, m)


def _weekdays(first: str | None, last: str | None, text: str) -> list[int]:
    if first is None:
        return list(range(7))
    try:
        a = DAYS.index(first.lower())
        b = DAYS.index((last or first).lower())
    except ValueError:
        raise HoursError(f"{text!r}: days are written Mon, Tue, Wed, Thu, Fri, Sat, Sun") from None
    return [d % 7 for d in range(a, b + 1 if b >= a else b + 8)]


@dataclass(frozen=True)
class WorkingHours:
    """When the company works: per weekday (0 = Monday) an opening and a closing time, holidays off."""

    week: dict[int, tuple[time, time]]
    holidays: frozenset[date]
    zone: tzinfo

    @classmethod
    def parse(cls, schedule: str, holidays: Iterable[date] | str, zone: tzinfo) -> WorkingHours | None:
        """``schedule`` such as ``Mon-Sat 08:00-18:00`` (None for ``24/7`` or empty: round the clock)."""
        text = schedule.strip()
        if not text or text.lower() == ROUND_THE_CLOCK:
            return None
        week: dict[int, tuple[time, time]] = {}
        for part in text.split(";"):
            m = _PART.match(part)
            if m is None:
                raise HoursError(f"{part.strip()!r} is not a schedule such as 'Mon-Sat 08:00-18:00' or '24/7'")
            opens = _clock_time(m.group(3), m.group(4), part.strip())
            closes = _clock_time(m.group(5), m.group(6), part.strip())
            if closes <= opens:
                raise HoursError(f"{part.strip()!r}: the closing time must come after the opening time")
            for day in _weekdays(m.group(1), m.group(2), part.strip()):
                week[day] = (opens, closes)
        days = parse_holidays(holidays) if isinstance(holidays, str) else frozenset(holidays)
        return cls(week, days, zone)

    def _open_spans(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working spans (UTC) from the company's day of ``start`` on, in order, forever."""
        day = start.astimezone(self.zone).date()
        while True:
            hours = self.week.get(day.weekday())
            if hours is not None and day not in self.holidays:
                opens = datetime.combine(day, hours[0], self.zone).astimezone(UTC)
                closes = (datetime.combine(day + timedelta(days=1), time(0), self.zone) if hours[1] == time.max
                          else datetime.combine(day, hours[1], self.zone)).astimezone(UTC)  # fmt: skip
                yield opens, closes
            day += timedelta(days=1)

    def add(self, start: datetime, hours: float) -> datetime:
        """The instant ``hours`` working hours after ``start`` (counted from the next opening when closed)."""
        if not self.week:
            raise HoursError("a schedule without any working day never reaches a due time")
        left = timedelta(hours=hours)
        start = start.astimezone(UTC)
        for opens, closes in self._open_spans(start):
            if closes <= start:
                continue
            begin = max(opens, start)
            if begin + left <= closes:
                return begin + left
            left -= closes - begin
        raise AssertionError("unreachable: the spans never end")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from ``start`` to ``end`` (zero when ``end`` is not after ``start``)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        total = timedelta(0)
        if end <= start or not self.week:
            return total
        for opens, closes in self._open_spans(start):
            if opens >= end:
                return total
            total += max(timedelta(0), min(closes, end) - max(opens, start))
        raise AssertionError("unreachable: the spans never end")


def parse_holidays(text: str) -> frozenset[date]:
    """Comma-separated ISO dates (``2026-12-25,2026-12-26``)."""
    days = set()
    for item in text.split(","):
        if item.strip():
            try:
                days.add(date.fromisoformat(item.strip()))
            except ValueError:
                raise HoursError(f"{item.strip()!r} is not a date such as 2026-12-25") from None
    return frozenset(days)


@dataclass(frozen=True)
class QuietHours:
    """A nightly window on the company's wall clock (e.g. 20:00-07:00) in which nothing that can wait is
    sent to customers."""

    start: time
    end: time
    zone: tzinfo

    @classmethod
    def parse(cls, window: str, zone: tzinfo) -> QuietHours | None:
        """``20:00-07:00`` (None when empty: never quiet)."""
        text = window.strip()
        if not text:
            return None
        m = re.match(rf"^{_HHMM}\s*-\s*{_HHMM}$", text)
        if m is None:
            raise HoursError(f"{text!r} is not a window such as '20:00-07:00'")
        start = _clock_time(m.group(1), m.group(2), text)
        end = _clock_time(m.group(3), m.group(4), text)
        if start == end or time.max in (start, end):
            raise HoursError(f"{text!r}: a quiet window starts and ends at different times within the day")
        return cls(start, end, zone)

    def until(self, at: datetime) -> datetime | None:
        """When the window that ``at`` falls in ends (UTC), or None when ``at`` is not in quiet hours."""
        local = at.astimezone(self.zone)
        t, day = local.time(), local.date()
        if self.start < self.end:  # e.g. 01:00-05:00
            inside, end_day = self.start <= t < self.end, day
        elif t >= self.start:  # e.g. 20:00-07:00, in the evening
            inside, end_day = True, day + timedelta(days=1)
        else:  # ... or in the small hours
            inside, end_day = t < self.end, day
        return datetime.combine(end_day, self.end, self.zone).astimezone(UTC) if inside else None
