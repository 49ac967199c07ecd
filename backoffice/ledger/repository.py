"""All SQL of the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import psycopg


def insert_entries(
    conn: psycopg.Connection, contract_id: int, currency: str, rows: Sequence[tuple[date, str, str, int]]
) -> None:
    """Insert (entry_date, status, type, amount in minor units) rows for one contract."""
    with conn.cursor() as cur:
        cur.executemany(
            """insert into ledger_entries (contract_id, entry_date, status, type, amount, currency)
               values (%s, %s, %s, %s, %s, %s)""",
            [(contract_id, d, s, t, a, currency) for d, s, t, a in rows],
        )
