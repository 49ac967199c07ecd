"""Server-rendered charts of the unit page: the geometry of small inline SVG line and bar charts (no
script, a few kilobytes each). The newest point is marked and labelled with its value, so the chart
shows the latest reading itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

WIDTH, HEIGHT = 460, 150
LEFT, RIGHT, TOP, BOTTOM = 42, 56, 10, 22


@dataclass
class Chart:
    """One chart: a line path or bars in a WIDTH x HEIGHT box, its axis labels and its newest point."""

    id: str
    title: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    path: str = ""
    bars: list[tuple[float, float, float, float, str]] = field(default_factory=list)  # x, y, w, h, title
    y_labels: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    latest: tuple[float, float, str, str] | None = None  # x, y, value text, when
    empty: bool = True


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f} %"
    if abs(value) >= 100:
        return f"{value:.0f} {unit}"
    return f"{value:.2f} {unit}"


def _scale(values: Sequence[float], floor_zero: bool) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if floor_zero:
        lo = min(lo, 0.0)
    if hi - lo < 1e-9:
        hi, lo = hi + 1, lo - (0 if floor_zero else 1)
    return lo, hi


def _frame(chart: Chart, lo: float, hi: float) -> None:
    chart.y_labels = [(TOP + 8, _fmt(hi, chart.unit)), (HEIGHT - BOTTOM, _fmt(lo, chart.unit))]


def line(
    id: str, title: str, unit: str, points: Sequence[tuple[datetime, float | None]], start: datetime, end: datetime,
    scale: float = 1.0, floor_zero: bool = False,
) -> Chart:  # fmt: skip
    """A line through the points in time order (a gap where a value is missing), over [start, end]."""
    chart = Chart(id, title, unit)
    known = [(t, v * scale) for t, v in points if v is not None]
    span = (end - start).total_seconds() or 1.0
    chart.x_labels = _day_ticks(start, end)
    if not known:
        return chart
    lo, hi = _scale([v for _, v in known], floor_zero)
    _frame(chart, lo, hi)

    def xy(t: datetime, v: float) -> tuple[float, float]:
        x = LEFT + (WIDTH - LEFT - RIGHT) * (t - start).total_seconds() / span
        y = HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (v - lo) / (hi - lo)
        return x, y

    parts, pen_down = [], False
    for t, v in points:
        if v is None:
            pen_down = False
            continue
        x, y = xy(t, v * scale)
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    chart.path = "".join(parts)
    t, v = known[-1]
    x, y = xy(t, v)
    chart.latest = (x, y, _fmt(v, unit), t.strftime("%Y-%m-%d %H:%M UTC"))
    chart.empty = False
    return chart


def bars(id: str, title: str, unit: str, values: Sequence[tuple[date, float | None]], first: date, last: date) -> Chart:
    """One bar a day from ``first`` to ``last`` (none where the day has no value)."""
    chart = Chart(id, title, unit)
    n = (last - first).days + 1
    slot = (WIDTH - LEFT - RIGHT) / max(n, 1)
    chart.x_labels = [(LEFT + slot * i + slot / 2, (first + timedelta(days=i)).strftime("%d %b"))
                      for i in range(0, n, max(n // 5, 1))]  # fmt: skip
    known = [(d, v) for d, v in values if v is not None and first <= d <= last]
    if not known:
        return chart
    lo, hi = _scale([v for _, v in known], True)
    _frame(chart, lo, hi)
    for d, v in known:
        i = (d - first).days
        h = (HEIGHT - TOP - BOTTOM) * (v - lo) / (hi - lo)
        x, y = LEFT + slot * i + slot * 0.1, HEIGHT - BOTTOM - h
        chart.bars.append((x, y, slot * 0.8, h, f"{d:%Y-%m-%d}: {_fmt(v, unit)}"))
    d, v = known[-1]
    x, y, w, _, _ = chart.bars[-1]
    chart.latest = (x + w / 2, y, _fmt(v, unit), f"{d:%Y-%m-%d}")
    chart.empty = False
    return chart


def _day_ticks(start: datetime, end: datetime) -> list[tuple[float, str]]:
    span = (end - start).total_seconds() or 1.0
    step = max(int((end - start).days // 5), 1)
    ticks, t = [], datetime(start.year, start.month, start.day, tzinfo=start.tzinfo) + timedelta(days=1)
    while t < end:
        ticks.append((LEFT + (WIDTH - LEFT - RIGHT) * (t - start).total_seconds() / span, t.strftime("%d %b")))
        t += timedelta(days=step)
    return ticks
