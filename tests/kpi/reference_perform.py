"""Reference implementation of docs/kpi_definitions.md §Q (portfolio quality and the loan tape), used only by
the tests.

Written from the text, unit by unit and day by day, on tests/kpi/reference.py's units: ``dpd(u, t)``
as §1 words it, ``w(u)`` by trying every date from ``acq(u)`` on. Slow and simple, so that the
columnar engine (kpi/quality.py) has something independent to agree with.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from kpi.inputs import Company, LedgerRow, Product
from tests.kpi import reference

BUCKETS = ("current", "1_30", "31_60", "61_90", "91_180", "181_plus")
VINTAGE_AGES = (30, 60, 90, 180, 360)


@dataclass
class Extra:
    customer_id: str
    first_payment_due: int | None  # f(u): the first expected payment row's date


def _ratio(num: Any, den: Any) -> float | None:
    return None if den == 0 else float(Fraction(num) / Fraction(den))


class Perform:
    def __init__(self, rows: list[LedgerRow], products: dict[str, Product], company: Company) -> None:
        self.portfolio = reference.build_portfolio(rows, products, company)
        self.w_days = company.write_off_dpd
        self.extra: dict[str, Extra] = {}
        for r in rows:
            e = self.extra.setdefault(r.receipt_id, Extra(r.customer_id, None))
            if r.status == "expected" and r.type == "payment":
                d = r.day.toordinal()
                e.first_payment_due = d if e.first_payment_due is None else min(e.first_payment_due, d)
        self.scale = 10**self.portfolio.scale
        self.rows = rows
        self._w: dict[str, int | None] = {}

    def late(self, amount: int) -> bool:
        """amount > 0.005 reporting-currency units (amount is scaled money)."""
        return Fraction(amount, self.scale) > Fraction(5, 1000)

    def ppd(self, u: reference.Unit) -> int:
        assert u.product.price_per_day is not None
        return self.portfolio.money(u.product.price_per_day)

    def dpd(self, u: reference.Unit, t: int) -> int | None:
        if u.acq > t:
            return None
        if u.flexible:
            behind = Fraction(t) - u.access_end(t, self.ppd(u))
            return int(max(behind, Fraction(0)) // 1)
        paid, sched = u.paid.upto(t), u.sched.upto(t)
        if not self.late(sched - paid):
            return 0
        for s in u.sched.dates:
            if s <= t and self.late(u.sched.upto(s) - paid):
                return t - s
        return 0

    def write_off(self, u: reference.Unit, d: int) -> int | None:
        """w(u) if the unit is written off by d."""
        for t in range(u.acq, d + 1):
            x = self.dpd(u, t)
            if x is not None and x > self.w_days:
                return t
        return None

    def owed(self, u: reference.Unit, t: int) -> int | None:
        return u.owed(t)

    def book(self, u: reference.Unit, t: int, w: int | None) -> bool:
        o = u.owed(t)
        return u.acq <= t and o is not None and self.late(o) and (w is None or w > t)

    def compute(self, as_of: date, product_type: str | None = None) -> dict[str, Any]:
        d = as_of.toordinal()
        money = self.scale
        units = [u for u in self.portfolio.units if product_type is None or u.product.product_type == product_type]
        w = {u.receipt_id: self.write_off(u, d) for u in units}
        book = [u for u in units if self.book(u, d, w[u.receipt_id])]
        gross = sum(u.owed(d) or 0 for u in book)
        aging: dict[str, float | None] = {}
        aging_count: dict[str, int] = {}
        for name in BUCKETS:
            held = [u for u in book if _bucket(self.dpd(u, d) or 0) == name]
            aging[name] = _ratio(sum(u.owed(d) or 0 for u in held), gross)
            aging_count[name] = len(held)
        rate: dict[str, float | None] = {}
        rate_gross: dict[str, float | None] = {}
        for k in (30, 90):
            eligible = [u for u in units if not u.flexible and u.acq <= d
                        and (w[u.receipt_id] is None or w[u.receipt_id] > d - k)]  # fmt: skip
            due = {u.receipt_id: u.sched.upto(d) - u.sched.upto(d - k) for u in eligible}
            col = {u.receipt_id: u.paid.upto(d) - u.paid.upto(d - k) for u in eligible}
            pos = [u.receipt_id for u in eligible if due[u.receipt_id] > 0]
            rate[str(k)] = _ratio(sum(min(max(col[r], 0), due[r]) for r in pos), sum(due[r] for r in pos))
            rate_gross[str(k)] = _ratio(sum(col.values()), sum(due.values()))
        write_offs = 0
        for u in units:
            wu = w[u.receipt_id]
            if wu is not None and d - 365 < wu <= d:
                write_offs += u.owed(wu) or 0
        grosses = []
        for i in range(12):
            t = d - 30 * i
            grosses.append(sum(u.owed(t) or 0 for u in units if self.book(u, t, w[u.receipt_id])))
        mean_gross = Fraction(sum(grosses), 12)
        recoveries = 0
        for r in self.rows:
            if r.receipt_id not in w or r.status != "completed" or r.type not in reference.CR:
                continue
            day, u_w = r.day.toordinal(), w[r.receipt_id]
            if d - 365 < day <= d and u_w is not None and u_w < day:
                recoveries += self.portfolio.money(r.amount * self.portfolio.fx_rates[r.currency])
        cohort = [u for u in units if not u.flexible and (f := self.extra[u.receipt_id].first_payment_due) is not None
                  and d - 365 < f <= d - 30]  # fmt: skip
        defaulted = [u for u in cohort if self._fpd(u)]
        active = [u for u in units if u.active(d)]
        lagged_units = [u for u in units if u.active(d - 90) and u.contract_value is not None]
        risk = [u for u in active if u.contract_value is not None and self._at_risk30(u, d)]
        vintage: dict[str, dict[str, float | None]] = {}
        dm = as_of.year * 12 + as_of.month - 1
        for u in sorted(units, key=lambda u: u.acq):
            acq = date.fromordinal(u.acq)
            m = acq.year * 12 + acq.month - 1
            if u.flexible or not dm - 24 < m <= dm:
                continue
            vintage.setdefault(f"{acq.year:04d}-{acq.month:02d}", {})
        for label in list(vintage):
            members = [u for u in units if not u.flexible and date.fromordinal(u.acq).strftime("%Y-%m") == label]
            for a in VINTAGE_AGES:
                old = [u for u in members if u.acq + a <= d]
                if old:
                    vintage[label][str(a)] = _ratio(sum(u.paid.upto(u.acq + a) for u in old),
                                                    sum(u.sched.upto(u.acq + a) for u in old))  # fmt: skip
            if not vintage[label]:
                del vintage[label]
        return {
            "gross_receivable": float(Fraction(gross, money)),
            "aging": aging,
            "aging_count": aging_count,
            "collection_rate": rate,
            "collection_rate_gross": rate_gross,
            "write_offs_12m": float(Fraction(write_offs, money)),
            "write_off_ratio_12m": _ratio(Fraction(write_offs), mean_gross),
            "recoveries_12m": float(Fraction(recoveries, money)),
            "first_payment_default": {"30": _ratio(len(defaulted), len(cohort))},
            "first_payment_default_n": {"30": len(cohort)},
            "par_lagged": {
                "30": _ratio(sum(u.owed(d) or 0 for u in risk), sum(u.owed(d - 90) or 0 for u in lagged_units))
            },  # fmt: skip
            "vintage": vintage,
        }

    def _fpd(self, u: reference.Unit) -> bool:
        f = self.extra[u.receipt_id].first_payment_due
        assert f is not None
        return self.late(u.sched.upto(f) - u.paid.upto(f + 30))

    def _at_risk30(self, u: reference.Unit, d: int) -> bool:
        ppd = self.ppd(u) if u.flexible else None
        return reference._at_risk(u, d, 30, ppd, 5 * self.scale, 1000)

    def tape(self, as_of: date) -> str:
        d = as_of.toordinal()
        buf = io.StringIO()
        out = csv.writer(buf)  # RFC 4180 lines (CRLF), as the examples are
        out.writerow(("receipt_id", "customer_id", "product_type", "business_model", "currency", "acquired_on",
                      "expected_end", "contract_value", "scheduled_to_date", "paid_to_date", "outstanding",
                      "days_past_due", "bucket", "status", "written_off_on", "first_payment_defaulted",
                      "last_payment_on"))  # fmt: skip
        for u in sorted(self.portfolio.units, key=lambda u: u.receipt_id):
            if u.acq > d:
                continue
            w = self.write_off(u, d)
            owed = u.owed(d)
            dpd = self.dpd(u, d)
            assert dpd is not None
            if w is not None:
                status = "written_off"
            elif owed is not None and not self.late(owed):
                status = "paid_off"
            elif u.active(d):
                status = "active"
            else:
                status = "churned"
            f = self.extra[u.receipt_id].first_payment_due
            in_fpd = not u.flexible and f is not None and d - 365 < f <= d - 30
            last = [day for day, amount in self._paid_rows(u) if amount > 0 and day <= d]
            out.writerow((
                u.receipt_id, self.extra[u.receipt_id].customer_id, u.product.product_type,
                u.product.business_model, self.portfolio.currency, date.fromordinal(u.acq).isoformat(),
                "" if u.end is None else date.fromordinal(u.end).isoformat(),
                self._money(u.contract_value), "" if u.flexible else self._money(u.sched.upto(d)),
                self._money(u.paid.upto(d)), self._money(owed), dpd, _bucket(dpd), status,
                "" if w is None else date.fromordinal(w).isoformat(),
                ("true" if self._fpd(u) else "false") if in_fpd else "",
                date.fromordinal(max(last)).isoformat() if last else "",
            ))  # fmt: skip
        return buf.getvalue()

    def _paid_rows(self, u: reference.Unit) -> list[tuple[int, int]]:
        dates, cum = u.paid.dates, u.paid.cum
        return [(dates[i], cum[i] - (cum[i - 1] if i else 0)) for i in range(len(dates))]

    def _money(self, value: int | None) -> str:
        if value is None:
            return ""
        exact = Decimal(value) / Decimal(self.scale)
        return str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def _bucket(dpd: int) -> str:
    for edge, name in zip((0, 30, 60, 90, 180), BUCKETS, strict=False):
        if dpd <= edge:
            return name
    return BUCKETS[-1]
