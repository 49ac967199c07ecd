"""Celery tasks of customer SMS. Thin: they call the service with a connection of their own."""

from __future__ import annotations

from typing import Any

from celery import current_app, shared_task

from backoffice import clock
from backoffice.config import Settings
from backoffice.db import connect
from backoffice.sms import service


@shared_task(name="sms.send_reminders")
def send_reminders() -> dict[str, Any]:
    """Remind customers whose credit ends in PAYGO_REMINDER_DAYS days (once per contract, period, offset)."""
    settings: Settings = current_app.conf.paygo_settings
    with connect(settings, "worker") as conn, conn.transaction():
        run = service.send_reminders(conn, clock.today(), settings.reminder_offsets)  # the company's day
    return run.model_dump(mode="json")
