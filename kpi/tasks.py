"""Celery tasks of the KPI engine. Thin: each opens the transaction and calls kpi.service."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from celery import current_app, shared_task

from backoffice import clock
from backoffice.config import Settings
from backoffice.db import connect
from kpi.service import take_snapshots

log = logging.getLogger(__name__)


def _snapshot(as_of: date) -> dict[str, Any]:
    settings: Settings = current_app.conf.paygo_settings
    with connect(settings, "worker") as conn, conn.transaction():
        results = take_snapshots(conn, [as_of], settings.kpi_company_file, settings.kpi_write_off_dpd)
    overall = results[0]["kpis"]
    return {"as_of": as_of.isoformat(), "segments": len(results), "portfolio_size": overall["portfolio_size"]}


@shared_task(name="kpi.snapshot")
def snapshot(as_of: str) -> dict[str, Any]:
    """KPIs as of a given date (YYYY-MM-DD), replacing any earlier snapshot of that date."""
    return _snapshot(date.fromisoformat(as_of))


@shared_task(name="kpi.snapshot_daily")
def snapshot_daily() -> dict[str, Any]:
    """Yesterday's KPIs: the last complete day."""
    return _snapshot(clock.today() - timedelta(days=1))


@shared_task(name="kpi.snapshot_month_end")
def snapshot_month_end() -> dict[str, Any]:
    """The KPIs as of the last day of the previous month."""
    return _snapshot(clock.today().replace(day=1) - timedelta(days=1))
