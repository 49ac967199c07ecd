"""The portfolio KPIs of docs/kpi_definitions.md, computed exactly; one implementation for every entry point.

The ledger arrives as columns (``kpi.columns``). ``build_from_columns`` converts money to the
reporting currency as integers scaled by ``10**scale`` and sorts the rows once by date (a stable
radix sort on 16-bit day offsets). Each kind of row (scheduled, paid, completed, maintenance,
deposits, positive receipts, flexible payments) is a ``_DayStream``: any unit's sum up to or
between two dates is one contiguous slice found by binary search and scattered into per-unit
totals with ``np.add.at``; "up to" sums are cached and extended, so a series of as-of dates in
order costs little more than one.

The flexible access timeline is kept exact in money (``E = access_end * ppd``, an integer) and
swept day by day in date order (``_AccessTimeline``): on day t each paying unit gets
``E = max(E, t * ppd) + amounts``; several payments on one day commute. Only final ratios and
means become floats; sums are integers and exact fractions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kpi.columns import Bool, Int, Int32, LedgerColumns, columns_from_rows, read_csv_columns, scaled
from kpi.inputs import (
    TYPES,
    Company,
    InputError,
    LedgerRow,
    Product,
    read_company,
    read_ledger,
    read_products,
    read_type_map,
)

PAR_DAYS = (7, 14, 21, 30)
ACTIVE_WINDOW = 90
REVENUE_WINDOW = 30
END_OF_TIME = date.max.toordinal()  # "up to" this date is every row
DEPOSIT, PAYMENT, RETURN = (TYPES.index(t) for t in ("deposit", "payment", "return"))
NO_DAY = 1 << 40
MAINTENANCE = [TYPES.index(t) for t in ("maintenance_scheduled", "maintenance_unscheduled")]


class _DayStream:
    """Rows in date order (optionally only those ``select`` marks): any unit's sum over any date range
    is one slice scattered into per-unit totals."""

    def __init__(self, day: Int32, unit: Int32, amount: Int, n_units: int, select: Bool | None = None) -> None:
        self.day, self.unit, self.amount, self.n_units, self.select = day, unit, amount, n_units, select
        self._cached: tuple[int, Int] | None = None  # the last prefix asked for: dates come in order

    def _rows(self, lo: int | None, hi: int) -> tuple[Int32, Int]:
        start = 0 if lo is None else self._find(lo)
        rows = slice(start, self._find(hi))
        unit, amount = self.unit[rows], self.amount[rows]
        if self.select is not None:
            keep = self.select[rows]
            unit, amount = unit[keep], amount[keep]
        return unit, amount

    def _find(self, d: int) -> int:
        """Rows dated <= d end here. (The date as the array's own type: else numpy converts the array.)"""
        return int(np.searchsorted(self.day, self.day.dtype.type(min(max(d, -(2**31)), 2**31 - 1)), side="right"))

    def between(self, lo: int | None, hi: int) -> Int:
        """Per unit: sum of amounts dated in (lo, hi] (lo None: from the beginning)."""
        out = np.zeros(self.n_units, dtype=np.int64)
        np.add.at(out, *self._rows(lo, hi))
        return out

    def upto(self, d: int) -> Int:
        if self._cached is not None and self._cached[0] <= d:
            out = self._cached[1] + self.between(self._cached[0], d)
        else:
            out = self.between(None, d)
        self._cached = (d, out)
        return out.copy()

    def total(self) -> Int:
        return self.between(None, END_OF_TIME)

    def any_in(self, lo: int, hi: int) -> Bool:
        """Per unit: has a row dated in (lo, hi]."""
        return np.bincount(self._rows(lo, hi)[0], minlength=self.n_units) > 0


class _AccessTimeline:
    """Flexible units' access end in money (``E = access_end * ppd``, exact integers) at any date.

    One sweep over the payment days in date order: on day t every paying unit gets
    ``E = max(E, t * ppd) + amounts``. Several payments on one day add up in any order (after the
    first, E >= t * ppd already). The sweep resumes where it stopped when dates come in order.
    """

    def __init__(self, day: Int32, unit: Int32, amount: Int, ppd: Int, e0: Int) -> None:
        self.unit, self.amount, self.ppd, self.e0 = unit, amount, ppd, e0
        self.days, self.bounds = np.unique(day, return_index=True)
        self.bounds = np.append(self.bounds, len(day))
        self._rewind()

    def _rewind(self) -> None:
        self.e = self.e0.copy()
        self.next = 0  # index into self.days of the first day not yet applied

    def end(self, d: int) -> Int:
        if self.next and self.days[self.next - 1] > d:
            self._rewind()
        stop = int(np.searchsorted(self.days, self.days.dtype.type(d), side="right"))
        e, ppd = self.e, self.ppd
        for i in range(self.next, stop):
            rows = slice(self.bounds[i], self.bounds[i + 1])
            unit = self.unit[rows]
            e[unit] = np.maximum(e[unit], int(self.days[i]) * ppd[unit])
            np.add.at(e, unit, self.amount[rows])
        self.next = max(self.next, stop)
        return e.copy()


def _per_unit(ufunc: np.ufunc, unit: Int32, values: npt.NDArray[Any], n_units: int, empty: int) -> Int:
    """Per unit: ``ufunc`` (np.minimum / np.maximum) over its values; ``empty`` for units with none."""
    out = np.full(n_units, empty, dtype=np.int64)
    ufunc.at(out, unit, values.astype(np.int64, copy=False))  # same dtypes: numpy's fast path
    return out


@dataclass
class Portfolio:
    receipt_ids: list[str]
    product_of_unit: Int  # per unit: index into product_list
    product_list: list[Product]
    scale: int  # money is held as integers of 10**-scale reporting-currency units
    currency: str
    company: Company
    fx_rates: dict[str, Decimal]
    acq: Int
    has_c: Bool  # C(u) defined
    contract_value: Int  # C(u) where defined
    has_end: Bool
    end: Int
    flexible: Bool
    ppd: Int  # flexible: price per day (scaled); else 0
    unit_cost: list[Fraction]  # per product
    certified: Bool  # per product
    sched: _DayStream
    paid: _DayStream
    completed: _DayStream
    maintenance: _DayStream
    deposits: _DayStream
    positive: _DayStream
    access: _AccessTimeline
    products: dict[str, Product] = field(default_factory=dict)
    customer_ids: list[str] = field(default_factory=list)  # per unit (its first row's customer_id)
    first_payment_due: Int = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # NO_DAY: none
    _quality: Any = None  # kpi.quality's per-unit indexes, built on first use

    @property
    def size(self) -> int:
        return len(self.receipt_ids)

    def product_types(self) -> list[str]:
        present = np.unique(self.product_of_unit)
        return sorted(self.product_list[i].product_type for i in present)


def load_portfolio(
    ledger: Path, products: Path, company: Path | None = None, type_map: Path | None = None, customers: bool = True
) -> Portfolio:
    """Read, validate and index the inputs; every problem of every file is reported at once.
    ``customers=False``: the fast reader leaves the customer ids out (the caller sets them)."""
    mapping = read_type_map(type_map)
    table = read_products(products)
    comp = read_company(company)
    columns = read_csv_columns(ledger, mapping, customers)
    if columns is not None:
        try:
            return build_from_columns(columns, table, comp)
        except _NeedsDetail:
            pass  # a problem: the careful reader below names its lines
    errors: list[str] = []
    rows = read_ledger(ledger, mapping, errors)
    return build_portfolio(rows, table, comp, errors)


class _NeedsDetail(Exception):
    """The columns hold a problem whose message needs line numbers."""


def _lines(lines: list[int], limit: int = 8) -> str:
    lines = sorted(lines)
    shown = ", ".join(str(n) for n in lines[:limit])
    return shown + (f", … ({len(lines)} lines)" if len(lines) > limit else "")


def _reporting_currency(columns: LedgerColumns, company: Company) -> str:
    if company.reporting_currency:
        return company.reporting_currency
    if len(columns.currencies) < 2:
        return columns.currencies[0] if columns.currencies else "XXX"
    totals = {
        name: int(np.abs(columns.amount[(columns.currency == code) & columns.completed]).sum())
        for code, name in enumerate(columns.currencies)
    }
    best = max(totals.values())
    if best == 0 and not columns.completed.any():
        return sorted(columns.currencies)[0]
    return min(c for c, t in totals.items() if t == best)


def build_portfolio(
    rows: list[LedgerRow], products: dict[str, Product], company: Company, errors: list[str] | None = None
) -> Portfolio:
    """Validate rows from the careful reader (every problem with its lines) and index them."""
    errors = list(errors or [])
    columns = columns_from_rows(rows)
    currency = _reporting_currency(columns, company)
    rates = {**company.fx_rates, currency: Decimal(1)}
    missing: dict[str, list[int]] = {}
    by_unit: dict[str, list[LedgerRow]] = {}
    for r in rows:
        if r.currency not in rates:
            missing.setdefault(r.currency, []).append(r.line)
        by_unit.setdefault(r.receipt_id, []).append(r)
    for cur, lines in sorted(missing.items()):
        errors.append(
            f"currency {cur} (lines {_lines(lines)}) has no fx rate to the reporting currency {currency}; "
            f"add it to fx_rates in the company file"
        )
    errors += _balance_sheet_errors(company, rates, currency)
    for rid, urows in by_unit.items():
        types = {r.product_type for r in urows}
        where = _lines([r.line for r in urows])
        if len(types) > 1:
            errors.append(f"unit {rid} names product types {', '.join(sorted(types))} (lines {where})")
        elif (pt := next(iter(types))) not in products:
            errors.append(f"product type {pt!r} of unit {rid} (lines {where}) is missing from the products table")
    if errors:
        raise InputError(errors)
    return build_from_columns(columns, products, company)


def _balance_sheet_errors(company: Company, rates: dict[str, Decimal], currency: str) -> list[str]:
    return [
        f"balance sheet currency {e['currency']} has no fx rate to {currency}"
        for e in company.balance_sheet or []
        if e["currency"].upper() not in rates
    ]


def _decimals(value: Decimal) -> int:
    return max(0, -int(value.as_tuple().exponent))


def build_from_columns(columns: LedgerColumns, products: dict[str, Product], company: Company) -> Portfolio:
    """Index validated columns. Raises _NeedsDetail for problems that need line numbers."""
    currency = _reporting_currency(columns, company)
    rates = {**company.fx_rates, currency: Decimal(1)}
    if any(c not in rates for c in columns.currencies) or _balance_sheet_errors(company, rates, currency):
        raise _NeedsDetail
    n_units = len(columns.receipt_ids)

    # One product type per unit, known to the products table.
    product_of_unit = _per_unit(np.minimum, columns.unit, columns.product, n_units, NO_DAY)
    if (_per_unit(np.maximum, columns.unit, columns.product, n_units, -1) != product_of_unit).any() or any(
        p not in products for p in columns.product_types
    ):
        raise _NeedsDetail
    product_list = [products[p] for p in columns.product_types]

    # Money: rows converted at exact rates, products, all on one integer scale.
    used_rates = [rates[c] for c in columns.currencies]
    rate_scale = max((_decimals(r) for r in used_rates), default=0)
    product_money = [v for p in product_list for v in (p.unit_cost, p.price_per_day, p.price_to_own) if v is not None]
    scale = max([columns.scale + rate_scale, *(_decimals(v) for v in product_money)])
    lift = 10 ** (scale - columns.scale - rate_scale)
    rate_int = np.array([scaled(r, rate_scale) * lift for r in used_rates], dtype=np.int64)
    if len(columns) and int(np.abs(columns.amount).max()) * int(rate_int.max()) >= 2**62:
        raise InputError(["amounts too large to convert exactly; use a coarser currency unit"])
    amount = columns.amount * rate_int[columns.currency] if len(rate_int) else columns.amount.copy()

    # Date order (a stable radix sort on 16-bit day offsets when the dates span < 180 years).
    day, unit = columns.day, columns.unit
    code = columns.kind * 2 + columns.completed  # one gather instead of two
    if len(day) > 1 and not (day[1:] >= day[:-1]).all():
        offset = day - day.min()
        order = np.argsort(offset.astype(np.uint16) if offset.max() < 1 << 16 else offset, kind="stable")
        del offset
        day, unit, amount, code = day[order], unit[order], amount[order], code[order]
        del order
    kind, completed = code >> 1, (code & 1).astype(np.bool_)

    cr = (kind == DEPOSIT) | (kind == PAYMENT) | (kind == RETURN)
    expected = ~completed
    exp_deposit = np.bincount(unit[expected & (kind == DEPOSIT)], minlength=n_units) > 0
    deposit_done = completed & (kind == DEPOSIT)
    sched_mask = (expected & cr) | (deposit_done & ~exp_deposit[unit])

    def stream(mask: Bool) -> _DayStream:
        """A stream of its own, for sums from the beginning of time."""
        return _DayStream(day[mask], unit[mask], amount[mask], n_units)

    def window(select: Bool) -> _DayStream:
        """A view of all rows, for sums over short windows."""
        return _DayStream(day, unit, amount, n_units, select)

    sched = stream(sched_mask)
    deposits = stream(deposit_done)
    first_dep = _per_unit(np.minimum, deposits.unit, deposits.day, n_units, NO_DAY)
    acq = np.where(first_dep < NO_DAY, first_dep, _per_unit(np.minimum, unit, day, n_units, NO_DAY))
    exp_cr = expected & cr
    exp_pay = expected & (kind == PAYMENT)
    first_payment_due = _per_unit(np.minimum, unit[exp_pay], day[exp_pay], n_units, NO_DAY)
    del exp_pay
    last_exp_cr = _per_unit(np.maximum, unit[exp_cr], day[exp_cr], n_units, -1)

    flexible_p = np.array([p.business_model == "flexible" for p in product_list], dtype=np.bool_)
    flexible = flexible_p[product_of_unit] if n_units else np.zeros(0, dtype=np.bool_)
    ppd_p = np.array([scaled(p.price_per_day, scale) if p.price_per_day else 0 for p in product_list], dtype=np.int64)
    pto = [p.price_to_own for p in product_list]
    pto_p = np.array([scaled(v, scale) if v is not None else 0 for v in pto], dtype=np.int64)
    has_pto_p = np.array([v is not None for v in pto], dtype=np.bool_)
    days_p = np.array([p.contract_days if p.contract_days is not None else 0 for p in product_list], dtype=np.int64)
    has_days_p = np.array([p.contract_days is not None for p in product_list], dtype=np.bool_)
    dep_days_p = np.array([p.deposit_days for p in product_list], dtype=np.int64)
    ppd = np.where(flexible, ppd_p[product_of_unit], 0) if n_units else np.zeros(0, dtype=np.int64)

    has_c = np.where(flexible, has_pto_p[product_of_unit], True) if n_units else flexible
    contract_value = np.where(flexible, pto_p[product_of_unit], sched.total()) if n_units else ppd
    if n_units:
        has_end = np.where(flexible, has_days_p[product_of_unit], last_exp_cr >= 0)
        end = np.where(flexible, acq + days_p[product_of_unit], last_exp_cr)
        e0 = np.where(flexible, (acq + dep_days_p[product_of_unit]) * ppd, 0)
    else:
        has_end, end, e0 = has_c, ppd, ppd
    flex_pay = completed & (kind == PAYMENT) & (amount > 0) & flexible[unit]
    access = _AccessTimeline(day[flex_pay], unit[flex_pay], amount[flex_pay], ppd, e0)

    return Portfolio(
        receipt_ids=columns.receipt_ids,
        product_of_unit=product_of_unit,
        product_list=product_list,
        scale=scale,
        currency=currency,
        company=company,
        fx_rates=rates,
        acq=acq,
        has_c=has_c,
        contract_value=contract_value,
        has_end=has_end,
        end=end,
        flexible=flexible,
        ppd=ppd,
        unit_cost=[Fraction(p.unit_cost) for p in product_list],
        certified=np.array([p.certified for p in product_list], dtype=np.bool_),
        sched=sched,
        paid=stream(completed & cr),
        completed=window(completed),
        maintenance=window(completed & np.isin(kind, MAINTENANCE)),
        deposits=deposits,
        positive=window(completed & (amount > 0)),
        access=access,
        products=products,
        customer_ids=columns.customer_ids,
        first_payment_due=first_payment_due,
    )


@dataclass
class _Day:
    """Every unit's quantities as of one date (arrays over units)."""

    active: Bool
    earlier: Bool  # active at D - 90
    churned: Bool
    owed: Int  # meaningful where has_c
    at_risk: dict[int, Bool]
    ahead: Int  # x(u), scaled money
    revenue: Int  # completed rows in the last 30 days
    maintenance: Int
    deposits: Int


def _active(p: Portfolio, d: int, paid: Int) -> tuple[Bool, Int]:
    """Active units at d (given P(u, d)), with O(u, d)."""
    owed = np.maximum(p.contract_value - paid, 0)
    recent = p.positive.any_in(d - ACTIVE_WINDOW, d)
    return (p.acq <= d) & recent & (~p.has_c | (owed > 0)), owed


def _day(p: Portfolio, d: int) -> _Day:
    start = d - ACTIVE_WINDOW
    paid_start = p.paid.upto(start)
    paid = paid_start + p.paid.between(start, d)
    active, owed = _active(p, d, paid)
    earlier, _ = _active(p, start, paid_start)
    churned = earlier & ~p.positive.any_in(start, d)
    s_start = p.sched.upto(start)
    access_end = p.access.end(d)  # E = access_end * ppd (flexible units)
    carried_in = np.maximum(paid_start - s_start, 0)
    received = paid - paid_start
    unit_scale = 10**p.scale
    at_risk = {}
    for k in PAR_DAYS:
        billed = p.sched.between(start, d - k)  # S(d - k) - S(d - 90)
        # billed - received - carried_in > 0.005 reporting-currency units, compared exactly
        asset = (billed - received - carried_in) * 1000 > 5 * unit_scale
        flex = d * p.ppd - access_end >= k * p.ppd  # D - access_end >= k, times ppd > 0
        at_risk[k] = np.where(p.flexible, flex, asset)
    s_now = s_start + p.sched.between(start, d)
    return _Day(
        active=active,
        earlier=earlier,
        churned=churned,
        owed=owed,
        at_risk=at_risk,
        ahead=np.where(p.flexible, access_end - d * p.ppd, paid - s_now),
        revenue=p.completed.between(d - REVENUE_WINDOW, d),
        maintenance=p.maintenance.between(d - REVENUE_WINDOW, d),
        deposits=p.deposits.upto(d),
    )


def _ratio(num: Fraction | int, den: Fraction | int) -> float | None:
    return None if den == 0 else float(Fraction(num) / Fraction(den))


def _sum(values: Int, mask: Bool) -> int:
    return int(values[mask].sum(dtype=np.int64))


def _kpis(p: Portfolio, day: _Day, d: int, in_segment: Bool) -> dict[str, Any]:
    unit_scale = 10**p.scale
    a = day.active & in_segment
    n = int(a.sum())
    per_product = np.bincount(p.product_of_unit[a], minlength=len(p.product_list))
    cost_sum = sum((Fraction(int(c)) * cost for c, cost in zip(per_product, p.unit_cost, strict=True)), Fraction(0))
    ratio_sum, ratio_n = Fraction(0), 0
    for i, cost in enumerate(p.unit_cost):
        if cost > 0 and per_product[i]:
            ratio_sum += Fraction(_sum(day.deposits, a & (p.product_of_unit == i)), unit_scale) / cost
            ratio_n += int(per_product[i])
    with_end = a & p.has_end
    owed_mask = a & p.has_c
    owed_total = _sum(day.owed, owed_mask)
    par: dict[str, float | None] = {}
    par_count: dict[str, float | None] = {}
    for k in PAR_DAYS:
        risk = day.at_risk[k] & a
        par[str(k)] = _ratio(_sum(day.owed, risk & p.has_c), owed_total)
        par_count[str(k)] = _ratio(int(risk.sum()), n)
    earlier = day.earlier & in_segment
    x = day.ahead[a]
    if n:
        mean = Fraction(int(x.sum(dtype=np.int64)), n)
        centred = x.astype(np.float64) - float(mean)
        ahead_behind: dict[str, float | None] = {
            "mean": float(mean / unit_scale),
            "std": math.sqrt(float(np.mean(centred * centred))) / unit_scale,
        }
    else:
        ahead_behind = {"mean": None, "std": None}
    asset = a & ~p.flexible
    n_asset = int(asset.sum())
    company = p.company
    return {
        "portfolio_size": n,
        "arpu": _ratio(Fraction(_sum(day.revenue, in_segment), unit_scale), n),
        "average_unit_cost": _ratio(cost_sum, n),
        "average_credit_period_days": _ratio(_sum(p.end - p.acq, with_end), int(with_end.sum())),
        "average_deposit_ratio": _ratio(ratio_sum, ratio_n),
        "par": par,
        "par_count": par_count,
        "churn": _ratio(int((day.churned & in_segment).sum()), int(earlier.sum())),
        "amount_ahead_behind": ahead_behind,
        "average_total_expected_revenue": _ratio(Fraction(_sum(p.contract_value, asset), unit_scale), n_asset),
        "ebitda_breakeven": None if company.ebitda is None else bool(company.ebitda > 0),
        "average_maintenance_cost": _ratio(Fraction(_sum(day.maintenance, in_segment), unit_scale), n),
        "standards_compliance": _ratio(int(p.certified[p.product_of_unit[a]].sum()), n),
        "fx_exposure": fx_exposure(p.company, p.fx_rates),
    }


def compute(portfolio: Portfolio, as_of: date, segment: str = "all", product_type: str | None = None) -> dict[str, Any]:
    """KPIs as of ``as_of`` for all units, or those of one product type; shaped as docs/kpi_definitions.md §4."""
    if product_type is None:
        return compute_day(portfolio, as_of, [])[0]
    result = compute_day(portfolio, as_of, [product_type], include_all=False)[0]
    result["segment"] = segment
    return result


def compute_day(
    portfolio: Portfolio,
    as_of: date,
    product_types: list[str],
    include_all: bool = True,
    tapes: dict[date, str] | None = None,
) -> list[dict[str, Any]]:
    """One result for "all" (unless excluded) and one per product type, sharing the per-unit work;
    the loan tape of the date too when ``tapes`` is given."""
    from kpi.quality import Quality  # it builds on this module

    d = as_of.toordinal()
    day = _day(portfolio, d)
    quality = Quality(portfolio, as_of, day)
    if tapes is not None:
        tapes[as_of] = quality.tape()
    segments: list[tuple[str, Bool]] = []
    if include_all:
        segments.append(("all", np.ones(portfolio.size, dtype=np.bool_)))
    for pt in product_types:
        codes = [i for i, p in enumerate(portfolio.product_list) if p.product_type == pt]
        segments.append((pt, np.isin(portfolio.product_of_unit, codes)))
    return [
        {"as_of": as_of.isoformat(), "segment": name, "currency": portfolio.currency,
         "kpis": _kpis(portfolio, day, d, mask), "portfolio_quality": quality.measures(mask)}
        for name, mask in segments
    ]  # fmt: skip


def fx_exposure(company: Company, fx_rates: dict[str, Decimal]) -> dict[str, float | None] | None:
    """Per currency |A - (L + E)| / E, and the total in the reporting currency (docs/kpi_definitions.md §3).
    Company data only (no ledger), so the tests' reference engine uses this one too."""
    sheet = company.balance_sheet
    if not sheet:
        return None
    out: dict[str, float | None] = {}
    nop_total = Fraction(0)
    equity_total = Fraction(0)
    for e in sheet:
        cur = e["currency"].upper()
        a, liab, eq = (Fraction(e[k]) for k in ("assets", "liabilities", "equity"))
        nop = a - (liab + eq)
        out[cur] = None if eq == 0 else float(abs(nop) / eq)
        rate = Fraction(fx_rates[cur])
        nop_total += abs(nop) * rate
        equity_total += eq * rate
    out["total"] = _ratio(nop_total, equity_total)
    return out


def compute_many(
    portfolio: Portfolio, as_of: list[date], by_product_type: bool = False, tapes: dict[date, str] | None = None
) -> list[dict[str, Any]]:
    """One result per as-of date and segment ("all" first, then each product type in the ledger); the
    loan tape of each date into ``tapes`` when given."""
    types = portfolio.product_types() if by_product_type else []
    return [r for d in as_of for r in compute_day(portfolio, d, types, tapes=tapes)]


def loan_tape(portfolio: Portfolio, as_of: date) -> str:
    """The loan tape of docs/kpi_definitions.md §Q4 as of one date: a CSV of every unit acquired by then."""
    from kpi.quality import Quality

    return Quality(portfolio, as_of, _day(portfolio, as_of.toordinal())).tape()


def distributions(portfolio: Portfolio, as_of: date) -> dict[str, list[float]]:
    """Per active unit: amount ahead (+) / behind (-), and revenue over the last 30 days (for histograms)."""
    d = as_of.toordinal()
    day = _day(portfolio, d)
    unit_scale = 10**portfolio.scale
    return {
        "amount_ahead_behind": (day.ahead[day.active] / unit_scale).tolist(),
        "revenue_30d": (day.revenue[day.active] / unit_scale).tolist(),
    }
