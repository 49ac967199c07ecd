"""Celery tasks of payment intake. Thin: they call the service code with a connection of their own."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import current_app, shared_task

from backoffice.config import Settings
from backoffice.db import connect
from backoffice.payments.momo import MomoClient, poll_pending


@shared_task(name="payments.poll_momo_pending")
def poll_momo_pending() -> dict[str, Any]:
    """Ask MTN MoMo about requests still PENDING (its callback is sent once, never retried)."""
    settings: Settings = current_app.conf.paygo_settings
    if not settings.momo_subscription_key:
        return {"skipped": "PAYGO_MOMO_SUBSCRIPTION_KEY is not set"}
    # Autocommit: each poll answer below is a transaction of its own (``conn.transaction()``).
    with connect(settings, "worker", autocommit=True) as conn:
        return asdict(poll_pending(conn, MomoClient(settings), settings))
