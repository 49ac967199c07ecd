"""Jinja2 templates of the back office's pages, and the page frame and helpers that other packages' pages
share (``make_templates``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from fastapi.templating import Jinja2Templates

from backoffice.money import to_decimal

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"  # the pages' stylesheet, served at /static


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


def make_templates(*more: Path) -> Jinja2Templates:
    """Templates from ``more`` directories (a package's own pages) and then the back office's (the
    page frame ``base.html``), with the formatting helpers every page uses."""
    made = Jinja2Templates(directory=[*more, TEMPLATE_DIR])
    made.env.filters["days"] = _days
    made.env.globals["money"] = _money
    made.env.globals["ago"] = _ago
    return made


templates = make_templates()


@dataclass(frozen=True)
class UnitPanel:
    """A panel another domain adds to the call centre's unit page (alerts, tickets, ...): its ``title``, a
    ``template`` under backoffice/templates (e.g. "panels/alerts.html") that renders the variable
    ``panel``, and ``load(conn, unit_id)``, which gives that value. The web app lists them in
    ``app.state.unit_panels`` (paygo/web.py); the page renders each in order."""

    title: str
    template: str
    load: Callable[[psycopg.Connection, int], object]
