"""Properties that must hold on any ledger (hypothesis-generated)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kpi.engine import build_portfolio, compute, compute_many
from kpi.inputs import Company, LedgerRow, Product

PRODUCTS = {
    "af": Product("af", "asset_finance", Decimal("8000"), True, None, None, None, 0),
    "flex": Product("flex", "flexible", Decimal("5000.50"), False, Decimal("35"), Decimal("9000"), 365, 7),
    "ffs": Product("ffs", "flexible", Decimal("0"), False, Decimal("12.5"), None, None, 0),
}
START = date(2023, 1, 1)
TYPES = ("deposit", "payment", "payment", "payment", "maintenance_unscheduled", "late_fee", "return")

row = st.tuples(
    st.integers(0, 540),  # day offset
    st.sampled_from(("expected", "completed", "completed")),
    st.sampled_from(TYPES),
    st.decimals(min_value=Decimal("0"), max_value=Decimal("3000"), places=2, allow_nan=False, allow_infinity=False),
)
unit = st.tuples(st.sampled_from(sorted(PRODUCTS)), st.lists(row, min_size=1, max_size=25))


def _ledger(units: list[tuple[str, list[tuple[int, str, str, Decimal]]]]) -> list[LedgerRow]:
    rows = []
    line = 2
    for i, (pt, urows) in enumerate(units):
        for offset, status, typ, amount in urows:
            # Refunds are the only negative rows, and only as received money: a negative *scheduled*
            # amount makes S(u,t) decrease, and then PAR as defined is not monotone in k.
            if typ == "return":
                amount, status = -amount, "completed"
            rows.append(LedgerRow(line, START + timedelta(days=offset), f"C{i}", f"U{i}", amount, "KES", status,
                                  typ, pt))  # fmt: skip
            line += 1
    return rows


def _naive_active(rows: list[LedgerRow], as_of: date) -> set[str]:
    """docs/kpi_definitions.md §2's activity rule, written out directly over the raw rows."""
    active = set()
    for rid in {r.receipt_id for r in rows}:
        urows = [r for r in rows if r.receipt_id == rid]
        product = PRODUCTS[urows[0].product_type]
        deposits = [r.day for r in urows if r.status == "completed" and r.type == "deposit"]
        acq = min(deposits) if deposits else min(r.day for r in urows)
        recent = any(
            r.status == "completed" and r.amount > 0 and as_of - timedelta(days=90) < r.day <= as_of for r in urows
        )
        cr = ("deposit", "payment", "return")
        paid = sum((r.amount for r in urows if r.status == "completed" and r.type in cr and r.day <= as_of), Decimal(0))
        if product.business_model == "asset_finance":
            has_expected_deposit = any(r.status == "expected" and r.type == "deposit" for r in urows)
            value: Decimal | None = sum(
                (r.amount for r in urows if r.type in cr and (r.status == "expected" or (
                    not has_expected_deposit and r.status == "completed" and r.type == "deposit"))),
                Decimal(0),
            )  # fmt: skip
        else:
            value = product.price_to_own
        owes = value is None or max(value - paid, Decimal(0)) > 0
        if acq <= as_of and recent and owes:
            active.add(rid)
    return active


@settings(max_examples=150, deadline=None)
@given(
    units=st.lists(unit, min_size=1, max_size=12),
    pick=st.integers(0, 10_000),
    # As-of dates on the windows' edges relative to a row are where off-by-one errors live.
    delta=st.sampled_from((0, 1, 7, 14, 21, 29, 30, 31, 89, 90, 91, 120)),
)
def test_kpi_invariants(units: list[tuple[str, list[tuple[int, str, str, Decimal]]]], pick: int, delta: int) -> None:
    rows = _ledger(units)
    portfolio = build_portfolio(rows, PRODUCTS, Company())
    as_of = rows[pick % len(rows)].day + timedelta(days=delta)
    result = compute(portfolio, as_of)
    k = result["kpis"]

    assert k["portfolio_size"] == len(_naive_active(rows, as_of))
    pars = [k["par"][d] for d in ("7", "14", "21", "30")]
    counts = [k["par_count"][d] for d in ("7", "14", "21", "30")]
    for series in (pars, counts):
        if series[0] is None:
            assert all(v is None for v in series)
            continue
        assert all(0.0 <= v <= 1.0 for v in series)
        assert all(a >= b - 1e-12 for a, b in zip(series, series[1:], strict=False))  # non-increasing in k
    if k["portfolio_size"] == 0:
        assert k["arpu"] is None and k["par_count"]["7"] is None
    if k["churn"] is not None:
        assert 0.0 <= k["churn"] <= 1.0

    segments = compute_many(portfolio, [as_of], by_product_type=True)
    assert segments[0] == result
    assert sum(s["kpis"]["portfolio_size"] for s in segments[1:]) == k["portfolio_size"]
