"""Connections to PostgreSQL: every process names itself with its ``application_name``, logs in as its
service's own role (``SERVICE_OF``) and tells the database the platform's clock (``paygo_now()``,
backoffice/clock.py)."""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from backoffice import clock
from backoffice.config import Settings

# The database role (config.DATABASE_ROLES) of each process, by its application_name; any other name
# (the operator's tools: users, secrets, devices, demo, backfill) connects with PAYGO_DATABASE_URL as it is.
SERVICE_OF = {
    "api": "web",
    "ingest": "ingest",
    "device-api": "ingest",
    "worker": "worker",
    "beat": "worker",
    "kpi": "worker",
    "delivery": "delivery",
    "migrate": "owner",
}


def url_of(settings: Settings, application_name: str) -> str:
    service = SERVICE_OF.get(application_name)
    return settings.database_url if service is None else settings.database_url_for(service)


def share_clock(conn: psycopg.Connection) -> None:
    """Tell this connection's ``paygo_now()`` how far the platform's clock is from the server's.

    Outside production the platform's "now" may be moved (PAYGO_NOW, a test's pinned clock); the
    offset is measured against the server's own clock in one round trip and kept for the session.
    """
    status = conn.info.transaction_status
    conn.execute(
        "select set_config('paygo.clock_offset', (%s::timestamptz - clock_timestamp())::text, false)",
        (clock.utc_now(),),
    )
    if status == psycopg.pq.TransactionStatus.IDLE and not conn.autocommit:
        conn.commit()


def _needs_clock(settings: Settings) -> bool:
    # In production the platform's clock is the machine's (PAYGO_NOW is refused there): paygo_now() = now().
    return settings.environment != "production"


def connect(settings: Settings, application_name: str, autocommit: bool = False) -> psycopg.Connection:
    conn = psycopg.connect(
        url_of(settings, application_name), application_name=application_name, autocommit=autocommit, connect_timeout=10
    )
    if _needs_clock(settings):
        share_clock(conn)
    return conn


def make_pool(settings: Settings, application_name: str, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    return ConnectionPool(
        url_of(settings, application_name),
        min_size=min_size,
        max_size=max_size,
        kwargs={"application_name": application_name},
        configure=share_clock if _needs_clock(settings) else None,
        open=True,
    )
