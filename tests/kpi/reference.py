"""Reference implementation used only by the tests: the first, row-by-row exact engine (slow, simple).

The production engine (kpi/engine.py) works on columns; this one walks each unit's rows with exact
fractions. Hypothesis checks that both agree on generated ledgers (tests/kpi/test_differential.py).
"""

from __future__ import annotations

import decimal
import math
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from kpi.engine import fx_exposure
from kpi.inputs import (
    Company,
    InputError,
    LedgerRow,
    Product,
    read_company,
    read_ledger,
    read_products,
    read_type_map,
)

CR = frozenset(("deposit", "payment", "return"))
MAINTENANCE = frozenset(("maintenance_scheduled", "maintenance_unscheduled"))
PAR_DAYS = (7, 14, 21, 30)
ACTIVE_WINDOW = 90
REVENUE_WINDOW = 30


class _Prefix:
    """Sorted dates with cumulative sums: total of amounts dated <= t in O(log n)."""

    __slots__ = ("dates", "cum")

    def __init__(self, items: list[tuple[int, int]]) -> None:
        items.sort()
        self.dates = [d for d, _ in items]
        self.cum: list[int] = []
        total = 0
        for _, a in items:
            total += a
            self.cum.append(total)

    def upto(self, t: int) -> int:
        i = bisect_right(self.dates, t)
        return self.cum[i - 1] if i else 0

    def total(self) -> int:
        return self.cum[-1] if self.cum else 0


@dataclass
class Unit:
    receipt_id: str
    product: Product
    acq: int  # date ordinal
    sched: _Prefix  # S: expected CR rows (+ completed deposits when no deposit is expected)
    paid: _Prefix  # P: completed CR rows
    completed: _Prefix  # every completed row, for ARPU
    maintenance: _Prefix  # completed maintenance rows
    deposits: _Prefix  # completed deposits
    positive: list[int]  # sorted dates of completed rows with a positive amount
    payments: list[tuple[int, int]]  # flexible: completed payments > 0, sorted by date
    contract_value: int | None  # C(u), scaled
    end: int | None  # expected final payment date, ordinal

    @property
    def flexible(self) -> bool:
        return self.product.business_model == "flexible"

    def owed(self, d: int) -> int | None:
        if self.contract_value is None:
            return None
        return max(self.contract_value - self.paid.upto(d), 0)

    def paid_in_window(self, d: int, days: int) -> bool:
        i = bisect_right(self.positive, d)
        return i > 0 and self.positive[i - 1] > d - days

    def active(self, d: int) -> bool:
        if self.acq > d or not self.paid_in_window(d, ACTIVE_WINDOW):
            return False
        owed = self.owed(d)
        return owed is None or owed > 0

    def access_end(self, d: int, ppd: int) -> Fraction:
        end = Fraction(self.acq + self.product.deposit_days)
        for day, amount in self.payments:
            if day > d:
                break
            end = max(end, Fraction(day)) + Fraction(amount, ppd)
        return end


@dataclass
class Portfolio:
    units: list[Unit]
    scale: int  # money is held as integers of 10**-scale reporting-currency units
    currency: str
    products: dict[str, Product]
    company: Company
    fx_rates: dict[str, Decimal] = field(default_factory=dict)

    def money(self, value: Decimal) -> int:
        return int(value.scaleb(self.scale))


def _reporting_currency(rows: list[LedgerRow], company: Company) -> str:
    if company.reporting_currency:
        return company.reporting_currency
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r.status == "completed":
            totals[r.currency] += abs(r.amount)
    if not totals:
        currencies = sorted({r.currency for r in rows})
        return currencies[0] if currencies else "XXX"
    best = max(totals.values())
    return min(c for c, t in totals.items() if t == best)


def load_portfolio(
    ledger: Path, products: Path, company: Path | None = None, type_map: Path | None = None
) -> Portfolio:
    """Read, validate and index the inputs; every problem of every file is reported at once."""
    errors: list[str] = []
    mapping = read_type_map(type_map)
    rows = read_ledger(ledger, mapping, errors)
    table = read_products(products)
    return build_portfolio(rows, table, read_company(company), errors)


def build_portfolio(
    rows: list[LedgerRow], products: dict[str, Product], company: Company, errors: list[str] | None = None
) -> Portfolio:
    """Validate the ledger against the products and company data and index it by unit."""
    errors = list(errors or [])
    currency = _reporting_currency(rows, company)
    rates = {**company.fx_rates, currency: Decimal(1)}
    by_unit: dict[str, list[LedgerRow]] = defaultdict(list)
    for r in rows:
        by_unit[r.receipt_id].append(r)
    missing_currency: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if r.currency not in rates:
            missing_currency[r.currency].append(r.line)
    for cur, lines in sorted(missing_currency.items()):
        errors.append(
            f"currency {cur} (lines {_lines(lines)}) has no fx rate to the reporting currency {currency}; "
            f"add it to fx_rates in the company file"
        )
    for e in company.balance_sheet or []:
        if e["currency"].upper() not in rates:
            errors.append(f"balance sheet currency {e['currency']} has no fx rate to {currency}")
    for rid, urows in by_unit.items():
        types = {r.product_type for r in urows}
        if len(types) > 1:
            errors.append(
                f"unit {rid} names product types {', '.join(sorted(types))} (lines {_lines([r.line for r in urows])})"
            )
        elif (pt := next(iter(types))) not in products:
            errors.append(f"product type {pt!r} of unit {rid} (lines {_lines([r.line for r in urows])}) "
                          f"is missing from the products table")  # fmt: skip
    if errors:
        raise InputError(errors)

    with decimal.localcontext() as ctx:
        ctx.prec = 60  # products of two decimals stay exact
        converted = {id(r): r.amount * rates[r.currency] for r in rows}
    money_values = list(converted.values())
    for p in products.values():
        money_values += [v for v in (p.unit_cost, p.price_per_day, p.price_to_own) if v is not None]
    scale = max((max(0, -int(v.as_tuple().exponent)) for v in money_values), default=0)
    portfolio = Portfolio([], scale, currency, products, company, rates)

    for rid, urows in by_unit.items():
        product = products[urows[0].product_type]
        sched, paid, completed, maint, deposits, payments = [], [], [], [], [], []
        positive = []
        has_expected_deposit = any(r.status == "expected" and r.type == "deposit" for r in urows)
        for r in urows:
            d, a = r.day.toordinal(), portfolio.money(converted[id(r)])
            if r.status == "expected":
                if r.type in CR:
                    sched.append((d, a))
                continue
            completed.append((d, a))
            if a > 0:
                positive.append(d)
            if r.type in CR:
                paid.append((d, a))
            if r.type in MAINTENANCE:
                maint.append((d, a))
            if r.type == "deposit":
                deposits.append((d, a))
                if not has_expected_deposit:
                    sched.append((d, a))
            if r.type == "payment" and a > 0:
                payments.append((d, a))
        acq = min(d for d, _ in deposits) if deposits else min(r.day.toordinal() for r in urows)
        expected_cr = [r.day.toordinal() for r in urows if r.status == "expected" and r.type in CR]
        sched_prefix = _Prefix(sched)
        if product.business_model == "asset_finance":
            contract_value: int | None = sched_prefix.total()
            end = max(expected_cr) if expected_cr else None
        else:
            contract_value = portfolio.money(product.price_to_own) if product.price_to_own is not None else None
            end = acq + product.contract_days if product.contract_days is not None else None
        payments.sort()
        portfolio.units.append(
            Unit(rid, product, acq, sched_prefix, _Prefix(paid), _Prefix(completed), _Prefix(maint),
                 _Prefix(deposits), sorted(positive), payments, contract_value, end)
        )  # fmt: skip
    return portfolio


def _lines(lines: list[int], limit: int = 8) -> str:
    lines = sorted(lines)
    shown = ", ".join(str(n) for n in lines[:limit])
    return shown + (f", … ({len(lines)} lines)" if len(lines) > limit else "")


def _ratio(num: Fraction | int, den: Fraction | int) -> float | None:
    return None if den == 0 else float(Fraction(num) / Fraction(den))


def _mean(values: list[Fraction]) -> float | None:
    return float(sum(values, Fraction(0)) / len(values)) if values else None


def _at_risk(u: Unit, d: int, k: int, ppd: int | None, threshold_num: int, threshold_den: int) -> bool:
    if u.flexible:
        assert ppd is not None
        return Fraction(d) - u.access_end(d, ppd) >= k
    start = d - ACTIVE_WINDOW
    carried_in = max(u.paid.upto(start) - u.sched.upto(start), 0)
    billed = u.sched.upto(d - k) - u.sched.upto(start)
    received = u.paid.upto(d) - u.paid.upto(start)
    # billed - received - carried_in > 0.005 (in reporting-currency units), compared exactly
    return (billed - received - carried_in) * threshold_den > threshold_num


def compute(portfolio: Portfolio, as_of: date, segment: str = "all", product_type: str | None = None) -> dict[str, Any]:
    """KPIs as of ``as_of`` for all units, or those of one product type; shaped as docs/kpi_definitions.md §4."""
    d = as_of.toordinal()
    unit_scale = 10**portfolio.scale
    units = [u for u in portfolio.units if product_type is None or u.product.product_type == product_type]
    active = [u for u in units if u.active(d)]
    n = len(active)
    ppd = {pt: portfolio.money(p.price_per_day) for pt, p in portfolio.products.items() if p.price_per_day}

    def money(value: Fraction | int) -> Fraction:
        return Fraction(value) / unit_scale

    revenue = sum(u.completed.upto(d) - u.completed.upto(d - REVENUE_WINDOW) for u in units)
    maintenance = sum(u.maintenance.upto(d) - u.maintenance.upto(d - REVENUE_WINDOW) for u in units)
    unit_costs = [Fraction(u.product.unit_cost) for u in active]
    credit_periods = [Fraction(u.end - u.acq) for u in active if u.end is not None]
    deposit_ratios = [
        money(u.deposits.upto(d)) / Fraction(u.product.unit_cost) for u in active if u.product.unit_cost > 0
    ]

    # PAR: 0.005 reporting-currency units, as an exact fraction of scaled money.
    threshold_num, threshold_den = 5 * unit_scale, 1000
    owed = {id(u): u.owed(d) for u in active}
    owed_total = sum(o for o in owed.values() if o is not None)
    par: dict[str, float | None] = {}
    par_count: dict[str, float | None] = {}
    for k in PAR_DAYS:
        at_risk = [u for u in active
                   if _at_risk(u, d, k, ppd.get(u.product.product_type), threshold_num, threshold_den)]  # fmt: skip
        risk_owed = sum(o for u in at_risk if (o := owed[id(u)]) is not None)
        par[str(k)] = _ratio(risk_owed, owed_total)
        par_count[str(k)] = _ratio(len(at_risk), n)

    earlier = [u for u in units if u.active(d - ACTIVE_WINDOW)]
    churned = sum(1 for u in earlier if not u.paid_in_window(d, ACTIVE_WINDOW))

    xs: list[Fraction] = []
    for u in active:
        if u.flexible:
            p = ppd[u.product.product_type]
            xs.append((u.access_end(d, p) - d) * p)
        else:
            xs.append(Fraction(u.paid.upto(d) - u.sched.upto(d)))
    if xs:
        mean_x = sum(xs, Fraction(0)) / len(xs)
        var_x = sum(((x - mean_x) ** 2 for x in xs), Fraction(0)) / len(xs)
        ahead_behind: dict[str, float | None] = {
            "mean": float(money(mean_x)),
            "std": math.sqrt(float(var_x)) / unit_scale,
        }
    else:
        ahead_behind = {"mean": None, "std": None}

    contract_values = [money(u.contract_value) for u in active if not u.flexible and u.contract_value is not None]
    company = portfolio.company
    return {
        "as_of": as_of.isoformat(),
        "segment": segment,
        "currency": portfolio.currency,
        "kpis": {
            "portfolio_size": n,
            "arpu": _ratio(money(revenue), n),
            "average_unit_cost": _mean(unit_costs),
            "average_credit_period_days": _mean(credit_periods),
            "average_deposit_ratio": _mean(deposit_ratios),
            "par": par,
            "par_count": par_count,
            "churn": _ratio(churned, len(earlier)),
            "amount_ahead_behind": ahead_behind,
            "average_total_expected_revenue": _mean(contract_values),
            "ebitda_breakeven": None if company.ebitda is None else bool(company.ebitda > 0),
            "average_maintenance_cost": _ratio(money(maintenance), n),
            "standards_compliance": _ratio(sum(1 for u in active if u.product.certified), n),
            "fx_exposure": fx_exposure(portfolio.company, portfolio.fx_rates),  # company data: shared code
        },
    }


def compute_many(portfolio: Portfolio, as_of: list[date], by_product_type: bool = False) -> list[dict[str, Any]]:
    """One result per as-of date and segment ("all" first, then each product type in the ledger)."""
    types = sorted({u.product.product_type for u in portfolio.units}) if by_product_type else []
    out = []
    for d in as_of:
        out.append(compute(portfolio, d))
        out.extend(compute(portfolio, d, segment=pt, product_type=pt) for pt in types)
    return out


def distributions(portfolio: Portfolio, as_of: date) -> dict[str, list[float]]:
    """Per active unit: amount ahead (+) / behind (-), and revenue over the last 30 days (for histograms)."""
    d = as_of.toordinal()
    unit_scale = 10**portfolio.scale
    ahead, revenue = [], []
    for u in portfolio.units:
        if not u.active(d):
            continue
        if u.flexible:
            p = portfolio.money(u.product.price_per_day or Decimal(0))
            ahead.append(float((u.access_end(d, p) - d) * p / unit_scale))
        else:
            ahead.append((u.paid.upto(d) - u.sched.upto(d)) / unit_scale)
        revenue.append((u.completed.upto(d) - u.completed.upto(d - REVENUE_WINDOW)) / unit_scale)
    return {"amount_ahead_behind": ahead, "revenue_30d": revenue}
