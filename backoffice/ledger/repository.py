"""All SQL of the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import IO, Any

import psycopg
from psycopg import sql

from backoffice.money import exponent


def insert_entries(
    conn: psycopg.Connection,
    contract_id: int,
    currency: str,
    rows: Sequence[tuple[date, str, str, int]],
    inbox_id: int | None = None,
) -> None:
    """Insert (entry_date, status, type, amount in minor units) rows for one contract; ``inbox_id``: the
    payment (payment_inbox) they record, when it came through the inbox."""
    with conn.cursor() as cur:
        cur.executemany(
            """insert into ledger_entries (contract_id, entry_date, status, type, amount, currency, inbox_id)
               values (%s, %s, %s, %s, %s, %s, %s)""",
            [(contract_id, d, s, t, a, currency, inbox_id) for d, s, t, a in rows],
        )


def insert_completed(
    conn: psycopg.Connection, contract_id: int, currency: str, inbox_id: int | None,
    rows: Sequence[tuple[date, str, int, int | None]],
) -> None:  # fmt: skip
    """Completed rows of one payment (``inbox_id``, None for money that came by no payment door):
    (entry_date, type, amount in minor units, the row it reverses or None)."""
    with conn.cursor() as cur:
        cur.executemany(
            """insert into ledger_entries (contract_id, entry_date, status, type, amount, currency, inbox_id,
                                           reverses_entry_id)
               values (%s, %s, 'completed', %s, %s, %s, %s, %s)""",
            [(contract_id, d, t, a, currency, inbox_id, r) for d, t, a, r in rows],
        )


def rows_of_payment(conn: psycopg.Connection, contract_id: int, inbox_id: int) -> list[tuple[int, str, int]]:
    """(id, type, amount) of the completed rows a payment brought to a contract that no reversal undid."""
    rows = conn.execute(
        """select e.id, e.type, e.amount from ledger_entries e
            where e.contract_id = %s and e.inbox_id = %s and e.status = 'completed' and e.reverses_entry_id is null
              and not exists (select 1 from ledger_entries r where r.reverses_entry_id = e.id)
            order by e.id""",
        (contract_id, inbox_id),
    ).fetchall()
    return [(int(i), str(t), int(a)) for i, t, a in rows]


def currencies(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("select distinct currency from ledger_entries order by 1")]


def copy_ledger_csv(conn: psycopg.Connection, out: IO[bytes], as_of: date | None = None) -> None:
    """The ledger as docs/kpi_definitions.md §1.1 CSV (decimal amounts, a unit = a contract's account number):
    every expected row (the schedule is read whole), completed rows dated up to ``as_of``."""
    pairs = [sql.SQL("({}, {})").format(sql.Literal(c), sql.Literal(exponent(c))) for c in currencies(conn)]
    exponents = sql.SQL(", ").join(pairs) if pairs else sql.SQL("(null, 0)")
    query = sql.SQL(
        """copy (
            select e.entry_date as date, c.customer_id, c.account_number as receipt_id,
                   round(e.amount::numeric / (10::numeric ^ x.exponent), x.exponent) as amount,
                   e.currency, e.status, e.type, p.code as product_type
            from ledger_entries e
            join contracts c on c.id = e.contract_id
            join products p on p.id = c.product_id
            join (values {exponents}) as x (currency, exponent) on x.currency = e.currency
            where e.status = 'expected' or {as_of}::date is null or e.entry_date <= {as_of}::date
            order by c.account_number, e.entry_date, e.id
        ) to stdout with (format csv, header)"""
    ).format(exponents=exponents, as_of=sql.Literal(as_of))
    with conn.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            out.write(block)


def contract_customers(conn: psycopg.Connection) -> dict[str, str]:
    """Account number (the export's receipt_id) -> its customer's id, as the export writes it."""
    return dict(conn.execute("select account_number, customer_id::text from contracts").fetchall())


def product_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            """select code, business_model, currency, hardware_cost, transport_cost, import_tax, insurance_cost,
                      installation_cost, lighting_global_certified, price_per_day, price_to_own, contract_days,
                      deposit_days
               from products order by code"""
        ).fetchall()


def collected_and_due(conn: psycopg.Connection, after: date, until: date) -> tuple[int, int]:
    """(received, scheduled) in minor units over the dates (after, until] of the contracts that
    have a schedule (asset finance): deposits, payments and returns received, against the
    deposits and instalments due. Their ratio is the collection rate of those days."""
    row = conn.execute(
        """select coalesce(sum(amount) filter (where status = 'completed'), 0),
                  coalesce(sum(amount) filter (where status = 'expected'), 0)
             from ledger_entries
            where entry_date > %s and entry_date <= %s and type in ('deposit', 'payment', 'return')
              and contract_id in (select contract_id from ledger_entries where status = 'expected')""",
        (after, until),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
