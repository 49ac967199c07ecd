"""Celery tasks of telemetry storage. Thin: each opens the transaction and calls the writer."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import current_app, shared_task

from backoffice import clock
from backoffice.config import Settings
from backoffice.db import connect
from ingest.writer import ensure_partitions

log = logging.getLogger(__name__)
WEEKS_AHEAD = 4


@shared_task(name="ingest.ensure_partitions")
def ensure_telemetry_partitions() -> dict[str, Any]:
    """Weekly telemetry partitions for the weeks ahead (plain PostgreSQL; a no-op on TimescaleDB, whose
    hypertable makes its own chunks), so readings never pile up in the default partition."""
    settings: Settings = current_app.conf.paygo_settings
    now = clock.utc_now()
    with connect(settings, "worker") as conn, conn.transaction():
        created = ensure_partitions(conn, now - timedelta(days=7), now + timedelta(weeks=WEEKS_AHEAD))
    log.info("telemetry partitions created=%d", created)
    return {"created": created}
