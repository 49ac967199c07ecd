"""Celery task of fleet health. Thin: it opens the transaction and calls the service."""

from __future__ import annotations

from datetime import date, timedelta

from celery import current_app, shared_task

from backoffice import clock
from backoffice.config import Settings
from backoffice.db import connect
from backoffice.health.service import run_day


@shared_task(name="health.evaluate")
def evaluate(day: str) -> dict[str, int | str]:
    """The health job for a given day (YYYY-MM-DD): rollups derived, rules, alerts, collections, queue."""
    settings: Settings = current_app.conf.paygo_settings
    with connect(settings, "worker") as conn, conn.transaction():
        return {"day": day, **run_day(conn, date.fromisoformat(day), settings)}


@shared_task(name="health.evaluate_daily")
def evaluate_daily() -> dict[str, int | str]:
    """Yesterday's health job: its readings are in (a reading received up to 40 minutes late counts)."""
    return evaluate((clock.today() - timedelta(days=1)).isoformat())
