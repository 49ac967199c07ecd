"""All SQL of the KPI snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb


@dataclass
class Snapshot:
    as_of: date
    segment: str
    currency: str
    result: dict[str, Any]
    distributions: dict[str, Any] | None
    units: int
    computed_at: datetime


def replace_snapshots(
    conn: psycopg.Connection,
    dates: Sequence[date],
    results: Sequence[dict[str, Any]],
    distributions: dict[str, dict[str, Any]],
    units: int,
) -> None:
    """Replace every snapshot of these as-of dates (the caller's transaction makes it all or nothing)."""
    with conn.cursor() as cur:
        cur.execute("delete from kpi_snapshots where as_of = any(%s)", (list(dates),))
        cur.executemany(
            """insert into kpi_snapshots (as_of, segment, currency, result, distributions, units)
               values (%s, %s, %s, %s, %s, %s)""",
            [
                (r["as_of"], r["segment"], r["currency"], Jsonb(r),
                 Jsonb(distributions[r["as_of"]]) if r["segment"] == "all" else None, units)
                for r in results
            ],
        )  # fmt: skip


_COLUMNS = "as_of, segment, currency, result, distributions, units, computed_at"


def latest_date(conn: psycopg.Connection) -> date | None:
    row = conn.execute("select max(as_of) from kpi_snapshots").fetchone()
    return row[0] if row else None


def latest(conn: psycopg.Connection) -> list[Snapshot]:
    """Every segment of the latest as-of date ("all" first)."""
    with conn.cursor(row_factory=class_row(Snapshot)) as cur:
        return cur.execute(
            f"""select {_COLUMNS} from kpi_snapshots
                where as_of = (select max(as_of) from kpi_snapshots)
                order by segment <> 'all', segment"""
        ).fetchall()


def for_date(conn: psycopg.Connection, as_of: date) -> list[Snapshot]:
    with conn.cursor(row_factory=class_row(Snapshot)) as cur:
        return cur.execute(
            f"select {_COLUMNS} from kpi_snapshots where as_of = %s order by segment <> 'all', segment", (as_of,)
        ).fetchall()


def series(conn: psycopg.Connection, since: date, segment: str = "all") -> list[Snapshot]:
    """One segment's snapshots from ``since`` on, oldest first (for charts over time)."""
    with conn.cursor(row_factory=class_row(Snapshot)) as cur:
        return cur.execute(
            f"select {_COLUMNS} from kpi_snapshots where segment = %s and as_of >= %s order by as_of",
            (segment, since),
        ).fetchall()


def since(conn: psycopg.Connection, start: date) -> list[Snapshot]:
    """Every segment's snapshots from ``start`` on, by date then segment ("all" first)."""
    with conn.cursor(row_factory=class_row(Snapshot)) as cur:
        return cur.execute(
            f"select {_COLUMNS} from kpi_snapshots where as_of >= %s order by as_of, segment <> 'all', segment",
            (start,),
        ).fetchall()


def replace_tapes(conn: psycopg.Connection, tapes: dict[date, tuple[str, int, bytes]]) -> None:
    """Replace the loan tapes of these as-of dates: (currency, units, gzip of the CSV) each."""
    with conn.cursor() as cur:
        cur.execute("delete from kpi_loan_tapes where as_of = any(%s)", (list(tapes),))
        cur.executemany(
            "insert into kpi_loan_tapes (as_of, currency, units, tape_gz) values (%s, %s, %s, %s)",
            [(d, currency, units, gz) for d, (currency, units, gz) in tapes.items()],
        )


def tape(conn: psycopg.Connection, as_of: date | None) -> tuple[date, bytes] | None:
    """(as-of date, gzip of the CSV) of the tape of that date, or of the latest one."""
    if as_of is None:
        row = conn.execute("select as_of, tape_gz from kpi_loan_tapes order by as_of desc limit 1").fetchone()
    else:
        row = conn.execute("select as_of, tape_gz from kpi_loan_tapes where as_of = %s", (as_of,)).fetchone()
    return None if row is None else (row[0], bytes(row[1]))


# --- the ledger for the engine, without a file (binary arrays into numpy; kpi.columns.columns_from_database) ---


@dataclass
class ContractIndex:
    """The contracts in the order the CSV export numbers its units (by account number)."""

    ids: list[int]
    account_numbers: list[str]
    customer_ids: list[str]
    product_codes: list[str]


def contract_index(conn: psycopg.Connection) -> ContractIndex:
    """Every contract's id, account number (the export's receipt_id), customer id (as text, as the
    export writes it) and product code, ordered by account number as the export orders its rows."""
    with conn.cursor() as cur:
        cur.execute(
            """select c.id, c.account_number, c.customer_id::text, p.code
                 from contracts c join products p on p.id = c.product_id
                order by c.account_number"""
        )
        rows = cur.fetchall()
    return ContractIndex([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


def ledger_currencies(conn: psycopg.Connection) -> list[str]:
    """The currencies the ledger's rows can be in: those of the contracts (each row is in its
    contract's; a row that is not is found by the reader and sent to the export path)."""
    return [r[0] for r in conn.execute("select distinct currency::text from contracts order by 1")]


def ledger_rows_estimate(conn: psycopg.Connection) -> int:
    """The planner's row count of the ledger (to size the reader's arrays; they grow if it is low)."""
    row = conn.execute("select greatest(reltuples, 0)::bigint from pg_class where oid = 'ledger_entries'::regclass")
    found = row.fetchone()
    return int(found[0]) if found else 0


def ledger_id_bounds(conn: psycopg.Connection) -> tuple[int, int] | None:
    """The lowest and highest ledger row id (an index lookup each), None when the ledger is empty."""
    row = conn.execute("select min(id), max(id) from ledger_entries").fetchone()
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))


def ledger_arrays(
    conn: psycopg.Connection, ids: tuple[int, int], as_of: date | None, currencies: Sequence[str], types: Sequence[str]
) -> tuple[bytes | None, bytes | None, bytes | None, bytes | None]:
    """The ledger rows with ids in [lo, hi) (the same rows the CSV export writes: every expected row,
    completed rows dated up to ``as_of``) as four arrays in PostgreSQL's binary array format
    (``array_send``): contract ids, dates, amounts in minor units, and per row a code
    (1 + the currency's index) * 256 + (1 + the type's index) * 2 + completed (0 for an unknown
    currency or type). One result of a few megabytes per call: no message, no Python object per row."""
    cases = {
        name: sql.SQL("case {} {} else 0 end").format(
            sql.SQL(column), sql.SQL(" ").join(sql.SQL("when {} then {}").format(sql.Literal(v), sql.Literal(i + 1))
                                               for i, v in enumerate(values)),
        )
        for name, column, values in (("currency", "e.currency::text", currencies), ("type", "e.type", types))
    }  # fmt: skip
    query = sql.SQL(
        """select array_send(array_agg(e.contract_id)), array_send(array_agg(e.entry_date)),
                  array_send(array_agg(e.amount)),
                  array_send(array_agg(({currency} * 256 + {type} * 2 + (e.status = 'completed')::int)::int4))
             from ledger_entries e
            where e.id >= %(lo)s and e.id < %(hi)s
              and (e.status = 'expected' or %(as_of)s::date is null or e.entry_date <= %(as_of)s::date)"""
    ).format(currency=cases["currency"], type=cases["type"])
    row = conn.execute(query, {"lo": ids[0], "hi": ids[1], "as_of": as_of}, binary=True).fetchone()
    assert row is not None  # an aggregate always gives a row
    return row[0], row[1], row[2], row[3]
