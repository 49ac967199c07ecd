"""Connections to PostgreSQL: every process names itself with its ``application_name`` and tells the
database the platform's clock (``paygo_now()``, backoffice/clock.py)."""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from backoffice import clock
from backoffice.config import Settings


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
        settings.database_url, application_name=application_name, autocommit=autocommit, connect_timeout=10
    )
    if _needs_clock(settings):
        share_clock(conn)
    return conn


def make_pool(settings: Settings, application_name: str, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    return ConnectionPool(
        settings.database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"application_name": application_name},
        configure=share_clock if _needs_clock(settings) else None,
        open=True,
    )
