"""Reading numbers out of the test's database."""

from __future__ import annotations

from typing import Any

from psycopg import pq


def count(conn: Any, sql: str, *args: object) -> int:
    """The first column of the query's first row as an int (0 when there is no row).

    When the caller has no transaction open, the one the query starts is ended at once: a test
    polling the database holds no lock the worker could wait on, and every call sees what others
    have committed since. A transaction of the caller's (its uncommitted writes) is left alone."""
    started_here = not conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE
    row = conn.execute(sql, args or None).fetchone()  # no arguments: a '%' in the SQL is just a '%'
    if started_here:
        conn.rollback()
    return int(row[0]) if row else 0
