"""Jinja2 templates of the back office's pages, and the page frame and helpers that other packages' pages
share (``make_templates``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from backoffice import clock
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


def _zone_name(context: Context) -> str | None:
    request = context.get("request")
    settings = getattr(getattr(getattr(request, "app", None), "state", None), "settings", None)
    return getattr(settings, "timezone", None)


@pass_context
def _local(context: Context, ts: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant on the company's clock, with its zone: ``{{ t.opened_at|local }}`` → "2026-12-08 09:15 EAT".
    The zone is the app's ``PAYGO_TIMEZONE`` (backoffice/clock.py company_zone())."""
    if ts is None:
        return "–"
    if ts.tzinfo is None:  # a naive value is UTC everywhere in this platform
        ts = ts.replace(tzinfo=UTC)
    shown = ts.astimezone(clock.company_zone(_zone_name(context)))
    return f"{shown.strftime(fmt)} {shown.tzname() or shown.strftime('%z')}"


@pass_context
def _may_open(context: Context, path: str) -> bool:
    """Whether the member of staff the page is for may open the GET route ``path`` (as declared, e.g.
    "/units/{serial}"): links to pages a role may not open are shown as text."""
    request = context.get("request")
    menu = getattr(getattr(getattr(request, "app", None), "state", None), "menu", None)
    staff = getattr(getattr(request, "state", None), "staff", None)
    return menu is not None and bool(menu.may_open(staff, path))


def make_templates(*more: Path) -> Jinja2Templates:
    """Templates from ``more`` directories (a package's own pages) and then the back office's (the
    page frame ``base.html``), with the formatting helpers every page uses."""
    made = Jinja2Templates(directory=[*more, TEMPLATE_DIR])
    made.env.filters["days"] = _days
    made.env.filters["local"] = _local
    made.env.globals["money"] = _money
    made.env.globals["ago"] = _ago
    made.env.globals["may_open"] = _may_open
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
