"""The columnar engine agrees with the row-by-row reference engine, and the Arrow CSV reader with
the careful one, on generated ledgers (several currencies, flexible and asset-finance units)."""

from __future__ import annotations

import csv
import math
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi.columns import read_csv_columns
from kpi.engine import build_portfolio, compute, load_portfolio, loan_tape
from kpi.inputs import LEDGER_COLUMNS, Company, LedgerRow
from tests.kpi import reference

from .test_properties import PRODUCTS, START, unit

PRODUCTS_CSV = (
    "product_type,business_model,hardware_cost,transport_cost,import_tax,insurance_cost,installation_cost,"
    "lighting_global_certified,price_per_day,price_to_own,contract_days,deposit_days\n"
    "af,asset_finance,8000,,,,,true,,,,\n"
    "flex,flexible,5000.50,,,,,false,35,9000,365,7\n"
    "ffs,flexible,0,,,,,false,12.5,,,\n"
)
COMPANY = Company(reporting_currency="KES", fx_rates={"USD": Decimal("129.25")})


def _rows(units: list[tuple[str, list[tuple[int, str, str, Decimal]]]], usd: set[int]) -> list[LedgerRow]:
    rows = []
    for i, (pt, urows) in enumerate(units):
        for offset, status, typ, amount in urows:
            if typ == "return":
                amount, status = -amount, "completed"
            cur = "USD" if i in usd else "KES"
            rows.append(LedgerRow(len(rows) + 2, START + timedelta(days=offset), f"C{i}", f"U{i}", amount, cur,
                                  status, typ, pt))  # fmt: skip
    return rows


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


@settings(max_examples=120, deadline=None)
@given(
    units=st.lists(unit, min_size=1, max_size=12),
    usd=st.sets(st.integers(0, 11), max_size=3),
    offset=st.integers(0, 700),
)
def test_columnar_engine_matches_reference(
    units: list[tuple[str, list[tuple[int, str, str, Decimal]]]], usd: set[int], offset: int
) -> None:
    rows = _rows(units, usd)
    as_of = START + timedelta(days=offset)
    got = compute(build_portfolio(rows, PRODUCTS, COMPANY), as_of)
    got.pop("portfolio_quality")  # docs/kpi_definitions.md §Q has its own reference (tests/kpi/test_perform.py)
    want = reference.compute(reference.build_portfolio(rows, PRODUCTS, COMPANY), as_of)
    assert _close(got, want), (got, want)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(units=st.lists(unit, min_size=1, max_size=8), offset=st.integers(0, 700))
def test_arrow_reader_matches_careful_reader(
    tmp_path: Path, units: list[tuple[str, list[tuple[int, str, str, Decimal]]]], offset: int
) -> None:
    rows = _rows(units, set())
    ledger, products = tmp_path / "ledger.csv", tmp_path / "products.csv"
    products.write_text(PRODUCTS_CSV)
    with ledger.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([c.upper() for c in LEDGER_COLUMNS])  # names match case-insensitively
        for r in rows:
            w.writerow([r.day, r.customer_id, r.receipt_id, r.amount, r.currency.lower(), r.status.title(),
                        r.type.upper(), f" {r.product_type}"])  # fmt: skip
    assert read_csv_columns(ledger, {}) is not None  # the fast path took it
    as_of = START + timedelta(days=offset)
    careful = build_portfolio(rows, PRODUCTS, Company())
    fast = load_portfolio(ledger, products)
    assert compute(fast, as_of) == compute(careful, as_of)
    assert loan_tape(fast, as_of) == loan_tape(careful, as_of)  # customer ids included


def test_doubtful_csv_falls_back_to_the_careful_reader(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("date,customer_id,receipt_id,amount,currency,status,type,product_type\n"
                      "2024-01-01,C1, U1 ,1e3,KES,completed,deposit,af\n"
                      "2024-02-01,C1,U1,7000,KES,expected,payment,af\n")  # fmt: skip
    assert read_csv_columns(ledger, {}) is None  # a padded id: the careful reader trims it
    (tmp_path / "products.csv").write_text(PRODUCTS_CSV)
    portfolio = load_portfolio(ledger, tmp_path / "products.csv")
    assert compute(portfolio, date(2024, 1, 1))["kpis"]["average_deposit_ratio"] == 1000 / 8000
