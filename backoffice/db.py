"""Connections to PostgreSQL: every process names itself with its ``application_name`` and tells the
database the platform's clock (``paygo_now()``, backoffice/clock.py)."""

from __future__ import annotations

import functools

import psycopg
from psycopg_pool import ConnectionPool

from backoffice import clock
from backoffice.config import Settings


def share_clock(conn: psycopg.Connection, offset: bool = True) -> None:
    """Set the session up for the platform's clock: instants come back in UTC whatever the server's or
    the machine's time zone (pages print them as UTC), and, unless ``offset`` is False (production,
    where PAYGO_NOW is refused), ``paygo_now()`` is told how far the platform's clock is from the
    server's: measured in one round trip and kept for the session.
    """
    status = conn.info.transaction_status
    if offset:
        conn.execute(
            "select set_config('TimeZone', 'UTC', false),"
            " set_config('paygo.clock_offset', (%s::timestamptz - clock_timestamp())::text, false)",
            (clock.utc_now(),),
        )
    else:
        conn.execute("select set_config('TimeZone', 'UTC', false)")
    if status == psycopg.pq.TransactionStatus.IDLE and not conn.autocommit:
        conn.commit()


def _needs_clock(settings: Settings) -> bool:
    # In production the platform's clock is the machine's (PAYGO_NOW is refused there): paygo_now() = now().
    return settings.environment != "production"


def connect(settings: Settings, application_name: str, autocommit: bool = False) -> psycopg.Connection:
    conn = psycopg.connect(
        settings.database_url, application_name=application_name, autocommit=autocommit, connect_timeout=10
    )
    share_clock(conn, offset=_needs_clock(settings))
    return conn


def make_pool(settings: Settings, application_name: str, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    return ConnectionPool(
        settings.database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"application_name": application_name},
        configure=functools.partial(share_clock, offset=_needs_clock(settings)),
        open=True,
    )
