"""Jinja2 templates shared by every page module."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from fastapi.templating import Jinja2Templates

from backoffice.money import to_decimal

# The back office's own templates, then the KPI package's shared pieces (table and SVG charts).
templates = Jinja2Templates(
    directory=[Path(__file__).parent / "templates", Path(__file__).parent.parent / "kpi" / "templates"]
)


def _ago(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "never"
    d = now - ts
    if d < timedelta(minutes=1):
        return "just now"
    if d < timedelta(hours=1):
        return f"{int(d.total_seconds() // 60)} min ago"
    if d < timedelta(days=1):
        return f"{int(d.total_seconds() // 3600)} h ago"
    return f"{d.days} d ago"


def _days(seconds: int | None) -> str:
    return "–" if seconds is None else f"{seconds / 86400:.1f} d"


def _money(minor: int | None, currency: str | None) -> str:
    if minor is None or currency is None:
        return "–"
    return f"{to_decimal(minor, currency):,} {currency}"


templates.env.filters["days"] = _days
templates.env.globals["money"] = _money
templates.env.globals["ago"] = _ago
