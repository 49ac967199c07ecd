"""A self-contained HTML KPI report: table, time series and distributions as inline SVG (no network)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())

HISTOGRAM_BINS = 24
SERIES = [
    ("portfolio_size", "Portfolio size (units)"),
    ("par.30", "PAR 30 (by balance)"),
    ("arpu", "ARPU, last 30 days"),
    ("churn", "Churn (90 days)"),
]
# The series that are shares, drawn and labelled as percentages.
PERCENT = frozenset({"par.30", "churn"})
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _get(kpis: dict[str, Any], key: str) -> float | None:
    value: Any = kpis
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None else float(value)


def _day(when: Any) -> date | None:
    try:
        return date.fromisoformat(str(when)[:10])
    except ValueError:
        return None


def _date_label(when: Any) -> str:
    """ "2026-11-30" -> "30 Nov 2026" (an as-of date on a chart's axis)."""
    day = _day(when)
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}" if day else str(when)


def _value_label(v: float, percent: bool) -> str:
    return f"{100 * v:.1f} %" if percent else f"{v:,.4g}"


def line_chart(points: list[tuple[Any, float | None]], width: int = 420, height: int = 180,
               percent: bool = False) -> dict[str, Any]:  # fmt: skip
    """A line over dated points (oldest first) on a time axis: each point placed by its date, ticks with
    their dates at the first and the last point and at points between that leave room for a label; the y
    axis labelled at its lowest and highest value (percentages for shares)."""
    known = [(i, v) for i, (_, v) in enumerate(points) if v is not None]
    if not known:
        return {"path": "", "dots": [], "width": width, "height": height, "min": None, "max": None, "ticks": [],
                "min_label": "", "max_label": ""}  # fmt: skip
    lo, hi = min(v for _, v in known), max(v for _, v in known)
    if percent:
        lo = min(lo, 0.0)
    span = (hi - lo) or abs(hi) or 1.0
    left, bottom, label_w = 52, 34, 72  # room for the value labels (left), the dates (below), one date's width
    days = [_day(when) for when, _ in points]
    if all(days) and len(points) > 1 and days[-1] != days[0]:
        first, total = days[0], (days[-1] - days[0]).days  # type: ignore[operator]
        where = [((d - first).days / total) for d in days]  # type: ignore[operator]
    else:  # no dates to place them by: evenly
        where = [i / max(len(points) - 1, 1) for i in range(len(points))]

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + (width - left - 14) * where[i], height - bottom - (height - bottom - 12) * (v - lo) / span

    dots = [(*xy(i, v), points[i][0], _value_label(v, percent)) for i, v in known]
    path = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y, _, _) in enumerate(dots))
    # Ticks: the last point always, then going back every point at least one label's width away.
    ticks: list[tuple[float, str]] = []
    for i in range(len(points) - 1, -1, -1):
        x = xy(i, lo)[0]
        if not ticks or ticks[-1][0] - x >= label_w:
            ticks.append((x, _date_label(points[i][0])))
    ticks.reverse()
    return {"path": path, "dots": dots, "width": width, "height": height, "min": lo, "max": hi, "ticks": ticks,
            "min_label": _value_label(lo, percent), "max_label": _value_label(hi, percent),
            "axis_y": height - bottom, "left": left}  # fmt: skip


def binned(values: list[float], bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Histogram counts over ``bins`` equal-width bins between the smallest and largest value."""
    if not values:
        return {"lo": None, "hi": None, "counts": [], "n": 0}
    array = np.asarray(values, dtype=np.float64)
    lo, hi = float(array.min()), float(array.max())
    counts, _ = np.histogram(array, bins=bins, range=(lo, hi if hi > lo else lo + 1))
    return {"lo": lo, "hi": hi, "counts": counts.tolist(), "n": len(values)}


def histogram(hist: dict[str, Any] | None, width: int = 420, height: int = 160) -> dict[str, Any]:
    """SVG bars for counts from ``binned``."""
    counts = (hist or {}).get("counts") or []
    if not counts or not hist:
        return {"bars": [], "width": width, "height": height, "lo": None, "hi": None, "n": 0}
    lo, hi = hist["lo"], hist["hi"]
    step = ((hi - lo) or 1.0) / len(counts)
    top = max(counts) or 1
    bar_w = (width - 40) / len(counts)
    bars = [
        (30 + i * bar_w, height - 20 - (height - 40) * c / top, bar_w - 1, (height - 40) * c / top, c,
         lo + i * step, lo + (i + 1) * step)
        for i, c in enumerate(counts)
    ]  # fmt: skip
    return {"bars": bars, "width": width, "height": height, "lo": lo, "hi": hi, "n": hist["n"]}


def series_charts(overall: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Line charts of the headline KPIs over the given results ("all" segment, oldest first)."""
    return [
        (label, line_chart([(r["as_of"], _get(r["kpis"], key)) for r in overall], percent=key in PERCENT))
        for key, label in SERIES
    ]


def render(results: list[dict[str, Any]], dists: dict[str, list[float]], title: str = "Portfolio KPIs") -> str:
    overall = [r for r in results if r["segment"] == "all"]
    series = series_charts(overall)
    return _env.get_template("report.html").render(
        title=title,
        results=results,
        latest=overall[-1] if overall else None,
        series=series,
        ahead=histogram(binned(dists.get("amount_ahead_behind", []))),
        revenue=histogram(binned(dists.get("revenue_30d", []))),
        get=_get,
    )


# --- portfolio quality (docs/kpi_definitions.md §Q) -------------------------------------------------

BUCKET_LABELS = [("current", "current"), ("1_30", "1–30 d"), ("31_60", "31–60 d"), ("61_90", "61–90 d"),
                 ("91_180", "91–180 d"), ("181_plus", "181+ d")]  # fmt: skip
BUCKET_COLOURS = ["#2e7d32", "#9ccc65", "#fdd835", "#fb8c00", "#e53935", "#6d1b1b"]


def aging_bar(quality: dict[str, Any] | None, width: int = 640, height: int = 28) -> dict[str, Any]:
    """One stacked bar: each bucket's share of the gross receivable, with its count of units."""
    aging = (quality or {}).get("aging") or {}
    counts = (quality or {}).get("aging_count") or {}
    parts, x = [], 0.0
    for (key, label), colour in zip(BUCKET_LABELS, BUCKET_COLOURS, strict=True):
        share = aging.get(key)
        w = (share or 0.0) * width
        parts.append({"key": key, "label": label, "colour": colour, "share": share, "count": counts.get(key, 0),
                      "x": x, "w": w})  # fmt: skip
        x += w
    return {"parts": parts, "width": width, "height": height, "empty": not any(p["w"] for p in parts)}


def vintage_chart(quality: dict[str, Any] | None, width: int = 640, height: int = 260) -> dict[str, Any]:
    """Vintage curves: for each acquisition month, paid ÷ scheduled at 30, 60, 90, 180 and 360 days."""
    vintage: dict[str, dict[str, float | None]] = (quality or {}).get("vintage") or {}
    ages = [30, 60, 90, 180, 360]
    values = [v for curve in vintage.values() for v in curve.values() if v is not None]
    top = max([1.2, *values])
    left, right, bottom, up = 40, 20, 24, 12

    def xy(age: int, v: float) -> tuple[float, float]:
        return (left + (width - left - right) * age / ages[-1],
                height - bottom - (height - bottom - up) * v / top)  # fmt: skip

    lines = []
    months = sorted(vintage)
    for i, month in enumerate(months):
        points = [(a, vintage[month].get(str(a))) for a in ages]
        dots = [(*xy(a, v), a, v) for a, v in points if v is not None]
        path = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y, _, _) in enumerate(dots))
        hue = round(220 - 220 * i / max(len(months) - 1, 1))  # oldest blue ... newest red
        lines.append({"month": month, "path": path, "dots": dots, "colour": f"hsl({hue}, 65%, 42%)"})
    one = xy(0, 1.0)[1]
    ticks = [(xy(a, 0)[0], a) for a in ages]
    levels = [(xy(0, v)[1], f"{round(100 * v)} %") for v in (0.0, 0.5)]  # 100 % is the dashed plan line
    return {"lines": lines, "width": width, "height": height, "top": top, "plan_y": one, "ticks": ticks,
            "levels": levels, "left": left, "bottom": height - bottom}  # fmt: skip
