"""PAR 30 of a set of contracts (an agent's customers), by the definition of the KPI specification
(docs/kpi_definitions.md §2-3: the rolling, "forgiving" PAR by value, exact arithmetic). The KPI engine
computes the whole portfolio from a ledger file; an agent's few hundred contracts are computed here
from their rows (the back office may not import the ``kpi`` package). Each contract is a unit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

CR = ("deposit", "payment", "return")


@dataclass(frozen=True)
class Row:
    entry_date: date
    status: str
    type: str
    amount: int


@dataclass(frozen=True)
class Terms:
    business_model: str
    price_per_day: int | None
    price_to_own: int | None
    deposit_days: int | None


@dataclass(frozen=True)
class Par:
    value: float | None  # Σ owed at risk ÷ Σ owed over active contracts (None: nothing owed)
    at_risk: int  # contracts at risk
    active: int  # contracts in the portfolio (active at the date)


def _scheduled(rows: list[Row], t: date | None) -> int:
    has_expected_deposit = any(r.status == "expected" and r.type == "deposit" for r in rows)
    total = sum(r.amount for r in rows if r.status == "expected" and r.type in CR and (t is None or r.entry_date <= t))
    if not has_expected_deposit:
        total += sum(
            r.amount
            for r in rows
            if r.status == "completed" and r.type == "deposit" and (t is None or r.entry_date <= t)
        )
    return total


def _paid(rows: list[Row], t: date) -> int:
    return sum(r.amount for r in rows if r.status == "completed" and r.type in CR and r.entry_date <= t)


def _acquired(rows: list[Row]) -> date | None:
    deposits = [r.entry_date for r in rows if r.status == "completed" and r.type == "deposit"]
    return min(deposits) if deposits else min((r.entry_date for r in rows), default=None)


def one(rows: list[Row], terms: Terms, d: date, k: int = 30) -> tuple[bool, bool, int | None]:
    """(active at d, at risk at d, amount owed) of one contract."""
    acq = _acquired(rows)
    if acq is None or acq > d:
        return False, False, None
    paid = _paid(rows, d)
    if terms.business_model == "asset_finance":
        owed: int | None = max(_scheduled(rows, None) - paid, 0)
    else:
        owed = None if terms.price_to_own is None else max(terms.price_to_own - paid, 0)
    recent = any(r.status == "completed" and r.amount > 0 and d - timedelta(days=90) < r.entry_date <= d for r in rows)
    active = recent and (owed is None or owed > 0)
    if not active:
        return False, False, owed
    if terms.business_model == "asset_finance":
        back = d - timedelta(days=90)
        carried_in = max(_paid(rows, back) - _scheduled(rows, back), 0)
        billed = _scheduled(rows, d - timedelta(days=k)) - _scheduled(rows, back)
        received = paid - _paid(rows, back)
        return True, billed - received - carried_in > 0, owed  # integer minor units: > 0.005 is > 0
    if not terms.price_per_day:
        return True, False, owed
    access_end = Fraction(acq.toordinal() + (terms.deposit_days or 0))
    for r in sorted(
        (r for r in rows if r.status == "completed" and r.type == "payment" and r.amount > 0 and r.entry_date <= d),
        key=lambda r: r.entry_date,
    ):
        access_end = max(access_end, Fraction(r.entry_date.toordinal())) + Fraction(r.amount, terms.price_per_day)
    return True, d.toordinal() - access_end >= k, owed


def par(contracts: Iterable[tuple[list[Row], Terms]], d: date, k: int = 30) -> Par:
    at_risk_owed = owed_total = at_risk = active = 0
    for rows, terms in contracts:
        is_active, risky, owed = one(rows, terms, d, k)
        if not is_active:
            continue
        active += 1
        at_risk += risky
        if owed is not None:
            owed_total += owed
            at_risk_owed += owed if risky else 0
    return Par(value=at_risk_owed / owed_total if owed_total else None, at_risk=at_risk, active=active)
