"""Portfolio quality (docs/kpi_definitions.md §Q3) and the loan tape (§4): the worked examples reproduced exactly by
the engine and by ``paygo kpi compute``, and the engine against the day-by-day reference on generated
ledgers (write-offs, recoveries, schedules that go down, several currencies)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpi.engine import build_portfolio, compute, load_portfolio, loan_tape
from kpi.inputs import Company, InputError, LedgerRow, read_company
from kpi.quality import money2
from tests.kpi.reference_perform import Perform

from .test_examples import EXAMPLES, assert_close
from .test_properties import PRODUCTS, START

CASES = sorted(EXAMPLES.glob("*/perform-expected-*.json"))


def _inputs(case: Path) -> tuple[Path, Path, Path | None]:
    d = case.parent
    company = d / "company.json"
    return d / "ledger.csv", d / "products.csv", company if company.exists() else None


def _tape_of(case: Path) -> Path:
    return case.with_name(case.name.replace("perform-expected-", "perform-tape-").replace(".json", ".csv"))


def test_perform_examples_are_present() -> None:
    assert {c.parent.name for c in CASES} >= {"small", "medium", "perform-handmade"}
    assert all(_tape_of(c).exists() for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_engine_reproduces_perform_example(case: Path) -> None:
    want = json.loads(case.read_text())
    portfolio = load_portfolio(*_inputs(case))
    as_of = date.fromisoformat(want["as_of"])
    got = compute(portfolio, as_of)
    assert got["currency"] == want["currency"]
    assert_close(got["portfolio_quality"], want["portfolio_quality"], "portfolio_quality")
    assert loan_tape(portfolio, as_of) == _tape_of(case).read_bytes().decode()


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_cli_reproduces_perform_example_and_tape(case: Path, tmp_path: Path) -> None:
    want = json.loads(case.read_text())
    ledger, products, company = _inputs(case)
    tape = tmp_path / "tape.csv"
    args = [sys.executable, "-m", "paygo.cli", "kpi", "compute", "--ledger", str(ledger), "--products",
            str(products), "--as-of", want["as_of"], "--format", "json", "--tape", str(tape)]  # fmt: skip
    if company:
        args += ["--company", str(company)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    (result,) = json.loads(out.stdout)
    assert result["as_of"] == want["as_of"] and result["segment"] == "all"
    assert_close(result["portfolio_quality"], want["portfolio_quality"], "portfolio_quality")
    assert tape.read_bytes() == _tape_of(case).read_bytes()


def test_segments_carry_their_own_measures() -> None:
    case = next(c for c in CASES if c.parent.name == "medium")
    portfolio = load_portfolio(*_inputs(case))
    from kpi.engine import compute_many

    results = compute_many(portfolio, [date(2023, 3, 31)], by_product_type=True)
    overall, parts = results[0], results[1:]
    assert len(parts) == len(portfolio.product_types())
    total = sum(r["portfolio_quality"]["aging_count"]["current"] for r in parts)
    assert total == overall["portfolio_quality"]["aging_count"]["current"]
    gross = sum(r["portfolio_quality"]["gross_receivable"] for r in parts)
    assert gross == pytest.approx(overall["portfolio_quality"]["gross_receivable"], rel=1e-12)


def test_write_off_dpd_from_the_company_file(tmp_path: Path) -> None:
    company = tmp_path / "company.json"
    company.write_text('{"write_off_dpd": 90}')
    assert read_company(company).write_off_dpd == 90
    assert read_company(None).write_off_dpd == 180
    for bad in ('{"write_off_dpd": -1}', '{"write_off_dpd": 1.5}', '{"write_off_dpd": "180"}'):
        company.write_text(bad)
        with pytest.raises(InputError, match="write_off_dpd"):
            read_company(company)


@pytest.mark.parametrize(
    ("value", "scale", "text"),
    [(12345, 2, "123.45"), (1234500, 4, "123.45"), (1234550, 4, "123.46"), (1234650, 4, "123.46"),
     (1234651, 4, "123.47"), (-1234550, 4, "-123.46"), (-50, 4, "0.00"), (7, 0, "7.00"), (5, 1, "0.50")],
)  # fmt: skip
def test_money_is_printed_with_two_decimals_half_even(value: int, scale: int, text: str) -> None:
    assert money2(value, scale) == text
    assert Decimal(text) == (Decimal(value).scaleb(-scale)).quantize(Decimal("0.01"))


# --- the engine against the day-by-day reference ----------------------------------------------------

row = st.tuples(
    st.integers(0, 500),  # day offset
    st.sampled_from(("expected", "expected", "completed", "completed", "completed")),
    st.sampled_from(("deposit", "payment", "payment", "payment", "payment", "late_fee", "return")),
    st.decimals(min_value=Decimal("0"), max_value=Decimal("3000"), places=2, allow_nan=False, allow_infinity=False),
)
unit = st.tuples(st.sampled_from(sorted(PRODUCTS)), st.lists(row, min_size=1, max_size=20))


def _rows(units: list[tuple[str, list[tuple[int, str, str, Decimal]]]], usd: set[int]) -> list[LedgerRow]:
    rows = []
    for i, (pt, urows) in enumerate(units):
        for offset, status, typ, amount in urows:
            if typ == "return":
                amount = -amount  # a refund; an *expected* one makes the schedule go down
            cur = "USD" if i in usd else "KES"
            rows.append(LedgerRow(len(rows) + 2, START + timedelta(days=offset), f"C{i % 3}", f"U{i}", amount, cur,
                                  status, typ, pt))  # fmt: skip
    return rows


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return bool(a == b)


@settings(max_examples=80, deadline=None)
@given(
    units=st.lists(unit, min_size=1, max_size=8),
    usd=st.sets(st.integers(0, 7), max_size=2),
    offset=st.integers(0, 560),
    write_off_dpd=st.sampled_from((0, 3, 30, 60, 180)),
)
def test_engine_matches_the_day_by_day_reference(
    units: list[tuple[str, list[tuple[int, str, str, Decimal]]]], usd: set[int], offset: int, write_off_dpd: int
) -> None:
    rows = _rows(units, usd)
    company = Company(reporting_currency="KES", fx_rates={"USD": Decimal("129.25")}, write_off_dpd=write_off_dpd)
    as_of = START + timedelta(days=offset)
    portfolio = build_portfolio(rows, PRODUCTS, company)
    reference = Perform(rows, PRODUCTS, company)
    got = compute(portfolio, as_of)["portfolio_quality"]
    want = reference.compute(as_of)
    assert _close(got, want), (got, want)
    assert loan_tape(portfolio, as_of) == reference.tape(as_of)
    af = compute(portfolio, as_of, segment="af", product_type="af")["portfolio_quality"]
    assert _close(af, reference.compute(as_of, "af")), af
