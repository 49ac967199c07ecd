"""Connections to PostgreSQL: every process names itself with its ``application_name``, logs in as its
service's own role (``SERVICE_OF``) and tells the database the platform's clock (``paygo_now()``,
backoffice/clock.py).

PAYGO_DATABASE_URL may name several hosts (libpq's multi-host string with
``target_session_attrs=read-write``, docs/operations.md): a new connection goes to whichever member
leads now, so a failover needs no configuration change. Work that failed because the primary went
away mid-transaction is run again once (``retry_once``); it must be idempotent by its own key
(ingest's per-unit seq, a payment's provider id), so a commit that did land is not doubled."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

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


def url_of(settings: Settings, application_name: str, read: bool = False) -> str:
    """``read``: the URL for reads that may lag by seconds (PAYGO_DATABASE_READ_URL, a standby on the HA
    stack; the primary's URL when it is unset)."""
    service = SERVICE_OF.get(application_name)
    if service is None:
        return settings.read_url if read else settings.database_url
    return settings.database_url_for(service, read=read)


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
        url_of(settings, application_name), application_name=application_name, autocommit=autocommit, connect_timeout=10
    )
    share_clock(conn, offset=_needs_clock(settings))
    return conn


def connect_read(settings: Settings, application_name: str) -> psycopg.Connection:
    """A connection for reads that may lag by seconds (PAYGO_DATABASE_READ_URL): a standby when one
    answers; read-only whichever server it reaches."""
    conn = psycopg.connect(url_of(settings, application_name, read=True),
                           application_name=f"{application_name} (read)", connect_timeout=10)  # fmt: skip
    conn.read_only = True
    share_clock(conn, offset=_needs_clock(settings))
    return conn


def _configure(conn: psycopg.Connection, offset: bool, read_only: bool) -> None:
    share_clock(conn, offset=offset)
    if read_only:
        conn.read_only = True


def make_pool(
    settings: Settings, application_name: str, min_size: int = 1, max_size: int = 10, read: bool = False
) -> ConnectionPool:
    """``read``: connections for reads that may lag by seconds (PAYGO_DATABASE_READ_URL), read-only, named
    "<application_name> (read)" in pg_stat_activity."""
    return ConnectionPool(
        url_of(settings, application_name, read=read),
        min_size=min_size,
        max_size=max_size,
        kwargs={"application_name": f"{application_name} (read)" if read else application_name},
        configure=functools.partial(_configure, offset=_needs_clock(settings), read_only=read),
        # An idle connection to a primary that died or was demoted is found out (one empty round
        # trip) and replaced before it is handed out, instead of failing the request that gets it.
        check=ConnectionPool.check_connection,
        open=True,
    )


log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLSTATEs that mean "this server stopped being a primary we can write to", not "the work is wrong":
# 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting, in recovery),
# 25006 read-only transaction (connected to a standby, or a demoted leader), class 08 connection.
_GONE = {"57P01", "57P02", "57P03", "25006"}


def primary_gone(err: BaseException) -> bool:
    """Whether ``err`` says the primary went away (killed, stopped, demoted) rather than that the
    transaction itself is wrong: then a new connection, to the new leader, may run it again."""
    if not isinstance(err, psycopg.Error):
        return False
    state = err.sqlstate
    if state is None:  # raised by libpq on our side: the connection broke or could not be made
        return isinstance(err, psycopg.OperationalError)
    return state in _GONE or state.startswith("08")


def retry_once(work: Callable[[], T], what: str, pause: float = 1.0) -> T:
    """Run ``work`` (which opens its own connection and transaction); if it failed because the
    primary went away, run it once more after ``pause`` seconds (a new connection reaches the new
    leader). Exactly once more: a second failure is the caller's to report."""
    try:
        return work()
    except psycopg.Error as err:
        if not primary_gone(err):
            raise
        log.warning("%s: the primary went away (%s); running it once more", what, str(err).strip()[:200])
    time.sleep(pause)
    return work()
