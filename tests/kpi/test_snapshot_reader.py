"""The snapshot's ledger read as binary arrays straight into the engine's columns: the very same
portfolio as the CSV export and the file readers give (every figure and the tape, exactly), several
currencies included; a ledger the careful reader must explain still goes through the export and is
refused with its lines named; the tape made column by column equals the one written row by row."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from kpi.engine import _day, build_portfolio, compute_many, load_portfolio, loan_tape
from kpi.inputs import Company, InputError, LedgerRow, read_products
from kpi.quality import Quality
from kpi.service import read_portfolio, read_portfolio_by_export, take_snapshots

from .test_examples import EXAMPLES
from .test_snapshots import load_example

CASES = sorted({p.parent for p in EXAMPLES.glob("*/perform-expected-*.json")})


def _as_of(case: Path) -> date:
    return max(date.fromisoformat(json.loads(p.read_text())["as_of"]) for p in case.glob("perform-expected-*.json"))


def _same(conn: psycopg.Connection, as_of: date, company: Path | None) -> None:
    fast, careful = read_portfolio(conn, as_of, company), read_portfolio_by_export(conn, as_of, company)
    assert (fast.size, fast.scale, fast.currency) == (careful.size, careful.scale, careful.currency)
    assert fast.receipt_ids == careful.receipt_ids and fast.customer_ids == careful.customer_ids
    for d in (as_of, date(as_of.year, 1, 1)):
        assert compute_many(fast, [d], by_product_type=True) == compute_many(careful, [d], by_product_type=True)
        assert loan_tape(fast, d) == loan_tape(careful, d)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_binary_copy_reads_the_same_portfolio_as_the_export(case: Path, conn: psycopg.Connection) -> None:
    load_example(conn, case)
    company = case / "company.json"
    _same(conn, _as_of(case), company if company.exists() else None)


def test_several_currencies_and_contracts_without_rows(conn: psycopg.Connection, tmp_path: Path) -> None:
    """Rows in KES and in USD (two decimals, converted at an exact rate), amounts with cents, and a
    contract with no ledger row (no unit, as in the export)."""
    load_example(conn, EXAMPLES / "small")
    contracts = conn.execute("select id, customer_id, unit_id, product_id from contracts order by id").fetchall()
    cid, customer, unit, product = contracts[0]
    conn.execute(
        """insert into contracts (account_number, customer_id, unit_id, product_id, currency, signed_on)
           values ('ZZ-EMPTY', %s, %s, %s, 'KES', '2023-01-01'), ('AA-USD', %s, %s, %s, 'USD', '2023-01-01')""",
        (customer, unit, product, customer, unit, product),
    )
    usd = conn.execute("select id from contracts where account_number = 'AA-USD'").fetchone()[0]  # type: ignore[index]
    conn.execute(
        """insert into ledger_entries (contract_id, entry_date, status, type, amount, currency) values
           (%s, '2023-01-05', 'expected', 'deposit', 1999, 'USD'),
           (%s, '2023-01-05', 'completed', 'deposit', 1999, 'USD'),
           (%s, '2023-02-05', 'expected', 'payment', 2550, 'USD'),
           (%s, '2023-02-07', 'completed', 'payment', 2001, 'USD'),
           (%s, '2023-02-07', 'completed', 'payment', 12345, 'KES')""",
        (usd, usd, usd, usd, cid),
    )
    conn.commit()
    company = tmp_path / "company.json"
    company.write_text(json.dumps({"reporting_currency": "KES", "fx_rates": {"USD": 129.35}}))
    _same(conn, date(2023, 6, 30), company)
    assert "ZZ-EMPTY" not in read_portfolio(conn, date(2023, 6, 30), company).receipt_ids


def test_a_ledger_the_careful_reader_must_explain_is_refused_with_its_lines(conn: psycopg.Connection) -> None:
    """A row in a currency without an fx rate: the snapshot reads through the export and names the lines."""
    load_example(conn, EXAMPLES / "small")
    cid = conn.execute("select min(id) from contracts").fetchone()[0]  # type: ignore[index]
    conn.execute(
        """insert into ledger_entries (contract_id, entry_date, status, type, amount, currency)
           values (%s, '2023-02-07', 'completed', 'payment', 500, 'EUR')""",
        (cid,),
    )
    conn.commit()
    with pytest.raises(InputError, match=r"currency (EUR|KES) \(lines \d+.*\) has no fx rate"), conn.transaction():
        take_snapshots(conn, [date(2023, 6, 30)])


def _rows(receipt: str, customer: str) -> list[LedgerRow]:
    return [
        LedgerRow(1, date(2023, 1, 1), customer, receipt, Decimal("1000"), "KES", "expected", "deposit", "shs"),
        LedgerRow(2, date(2023, 1, 1), customer, receipt, Decimal("1000"), "KES", "completed", "deposit", "shs"),
        LedgerRow(3, date(2023, 2, 1), customer, receipt, Decimal("2500.5"), "KES", "expected", "payment", "shs"),
        LedgerRow(4, date(2023, 3, 9), customer, receipt, Decimal("700.25"), "KES", "completed", "payment", "shs"),
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_tape_by_columns_equals_the_tape_by_rows(case: Path) -> None:
    company = case / "company.json"
    p = load_portfolio(case / "ledger.csv", case / "products.csv", company if company.exists() else None)
    d = _as_of(case)
    quality = Quality(p, d, _day(p, d.toordinal()))
    assert quality.tape() == quality.tape(by_rows=True)


def test_ids_that_need_quotes_are_quoted_as_csv_does(tmp_path: Path) -> None:
    products = tmp_path / "products.csv"
    products.write_text(
        "product_type,business_model,hardware_cost,lighting_global_certified\nshs,asset_finance,9000,true\n"
    )
    table = read_products(products)
    rows = _rows('R-1,"north"', "C 1") + _rows("R-2", "C\n2")
    p = build_portfolio(rows, table, Company())
    d = date(2023, 6, 30)
    quality = Quality(p, d, _day(p, d.toordinal()))
    text = quality.tape()
    assert text == quality.tape(by_rows=True)
    assert '"R-1,""north"""' in text and '"C\n2"' in text
