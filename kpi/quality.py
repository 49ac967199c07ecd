"""Portfolio quality for funders (docs/kpi_definitions.md §Q3) and the loan tape (§4), on the engine's Portfolio.

Everything here is per unit and exact: money as integers of ``10**-scale`` reporting-currency units,
days as date ordinals, each comparison with 0.005 made on integers. Only final ratios become floats.

Sums "as of a unit's own date" (``P(u, acq(u) + 90)``, ``S(u, f(u))``, ...) come from ``_ByUnit``:
the rows sorted by unit then date, with running sums; one binary search per unit over a combined
(unit, day) key answers every unit at once.

A unit's write-off date ``w(u)`` does not depend on the as-of date (``dpd(u, t)`` reads only rows
dated ``<= t``), so it is found once per portfolio: for asset finance among the dates where
``dpd(u, t) > W`` can start to hold (the acquisition, a row's date, a scheduled date plus W + 1);
for flexible units by sweeping the access timeline's payment days.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from kpi.columns import EPOCH_ORDINAL, Bool, Int
from kpi.engine import ACTIVE_WINDOW, NO_DAY, Portfolio, _Day, _DayStream, _per_unit

BUCKETS = ("current", "1_30", "31_60", "61_90", "91_180", "181_plus")
BUCKET_EDGES = np.array([0, 30, 60, 90, 180], dtype=np.int64)  # dpd <= edge[i]: bucket i; above all: 181_plus
COLLECTION_DAYS = (30, 90)
FPD_DAYS = 30
YEAR = 365
RATIO_DATES, RATIO_STEP = 12, 30  # write_off_ratio_12m: gross receivable at D - 30 i, i = 0..11
VINTAGE_AGES = (30, 60, 90, 180, 360)
VINTAGE_MONTHS = 24
TAPE_HEADER = (
    "receipt_id", "customer_id", "product_type", "business_model", "currency", "acquired_on", "expected_end",
    "contract_value", "scheduled_to_date", "paid_to_date", "outstanding", "days_past_due", "bucket", "status",
    "written_off_on", "first_payment_defaulted", "last_payment_on",
)  # fmt: skip

_SHIFT = 17
_SPAN = 1 << _SHIFT  # days in the (unit, day) key: 1900-01-01 + 358 years covers every ledger date
_BASE = date(1900, 1, 1).toordinal()
_CHUNK_UNITS = 65_536  # write-off candidates are made for this many units at a time (bounded memory)


class _ByUnit:
    """A stream's rows sorted by unit then date, with running sums: ``at(units, days)`` is each
    unit's sum of amounts dated ``<= its day``."""

    def __init__(self, stream: _DayStream, n_units: int) -> None:
        # The stream is in date order already: a stable sort by unit keeps each unit's rows by date.
        # Only the key and the running sums are kept (16 bytes a row): unit and day are in the key.
        order = np.argsort(stream.unit, kind="stable")
        self.key = stream.unit[order].astype(np.int64)
        self.key *= _SPAN
        self.key += stream.day[order]
        self.key -= _BASE
        self.cum = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(stream.amount[order], dtype=np.int64, out=self.cum[1:])
        del order
        self.start = np.searchsorted(self.key, np.arange(n_units + 1, dtype=np.int64) * _SPAN, side="left")

    def units(self, rows: slice | Int) -> Int:
        return self.key[rows] >> _SHIFT

    def days(self, rows: slice | Int) -> Int:
        return (self.key[rows] & (_SPAN - 1)) + _BASE

    def index(self, units: Int, days: Int, within: tuple[int, int] | None = None) -> Int:
        """Per unit: the end of its rows dated <= its day (its ``start`` when there are none).
        ``within``: the units lie in this range (the search looks only at their rows: fewer cache misses)."""
        offset = np.clip(np.asarray(days, dtype=np.int64) - _BASE, -1, _SPAN - 1)
        if within is None:
            found = np.searchsorted(self.key, units * _SPAN + offset, side="right")
        else:
            lo, hi = int(self.start[within[0]]), int(self.start[within[1]])
            found = np.searchsorted(self.key[lo:hi], units * _SPAN + offset, side="right") + lo
        return np.maximum(found, self.start[units])

    def at(self, units: Int, days: Int, within: tuple[int, int] | None = None) -> Int:
        return self.cum[self.index(units, days, within)] - self.cum[self.start[units]]

    def day_end_running_max(self) -> Int:
        """Per row: the highest ``S(u, s)`` over the unit's dates ``s`` up to this row's date."""
        if not len(self.key):
            return np.zeros(0, dtype=np.int64)
        unit = self.units(slice(None))
        day_end = self.cum[np.searchsorted(self.key, self.key, side="right")] - self.cum[self.start[unit]]
        if (np.diff(day_end)[np.diff(unit) == 0] >= 0).all():
            return day_end  # no unit's schedule goes down (no expected refunds): already its running max
        values, rank = np.unique(day_end, return_inverse=True)
        lifted = unit * len(values) + rank.reshape(-1)  # units never mix: each has its own range
        return values[np.maximum.accumulate(lifted) - unit * len(values)]


@dataclass
class _Fixed:
    """What does not depend on the as-of date: indexes, write-offs, first payments, vintage sums."""

    paid: _ByUnit
    sched: _ByUnit
    sched_max: Int  # per sched row: running max of S(u, date) (the schedule may go down: returns)
    threshold: int  # 0.005 reporting-currency units, times 1000, in scaled money
    write_off: Int  # w(u), NO_DAY if never
    wo_amount: Int  # O(u, w(u)) (0 where undefined)
    fpd_defaulted: Bool  # P(u, f+30) < S(u, f) - 0.005 (meaningful where f is defined)
    month: Int  # per unit: month of acq(u), months since 1970-01
    vintage_paid: dict[int, Int]  # age -> P(u, acq + age)
    vintage_sched: dict[int, Int]  # age -> S(u, acq + age)


def _fixed(p: Portfolio) -> _Fixed:
    if p._quality is not None:
        return p._quality
    n = p.size
    units = np.arange(n, dtype=np.int64)
    paid, sched = _ByUnit(p.paid, n), _ByUnit(p.sched, n)
    threshold = 5 * 10**p.scale  # x > 0.005  <=>  x * 1000 > threshold
    sched_max = sched.day_end_running_max()
    w = np.full(n, NO_DAY, dtype=np.int64)
    _asset_write_off(p, paid, sched, sched_max, threshold, w)
    _flexible_write_off(p, w)
    written = w < NO_DAY
    wo_amount = np.zeros(n, dtype=np.int64)
    paid_w = paid.at(units[written], w[written])
    wo_amount[written] = np.where(p.has_c[written], np.maximum(p.contract_value[written] - paid_w, 0), 0)
    f = p.first_payment_due
    has_f = (f < NO_DAY) & ~p.flexible
    defaulted = np.zeros(n, dtype=np.bool_)
    fu = units[has_f]
    gap = sched.at(fu, f[has_f]) - paid.at(fu, f[has_f] + FPD_DAYS)
    defaulted[has_f] = gap * 1000 > threshold
    month = (p.acq - EPOCH_ORDINAL).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    fixed = _Fixed(
        paid=paid,
        sched=sched,
        sched_max=sched_max,
        threshold=threshold,
        write_off=w,
        wo_amount=wo_amount,
        fpd_defaulted=defaulted,
        month=month,
        vintage_paid={a: paid.at(units, p.acq + a) for a in VINTAGE_AGES},
        vintage_sched={a: sched.at(units, p.acq + a) for a in VINTAGE_AGES},
    )
    p._quality = fixed
    return fixed


def _asset_write_off(p: Portfolio, paid: _ByUnit, sched: _ByUnit, sched_max: Int, threshold: int, w: Int) -> None:
    """w(u) for asset-finance units: the first t >= acq(u) with dpd(u, t) > W, i.e. P(u,t) < S(u,t) - 0.005
    and some scheduled date s <= t - W - 1 with S(u, s) > P(u, t) + 0.005. Between the candidate dates
    (acq, each paid or scheduled row's date, each scheduled date + W + 1) nothing in that test changes."""
    gap = p.company.write_off_dpd + 1
    n = p.size
    if not len(sched_max):
        return  # nothing scheduled: never past due
    for lo in range(0, n, _CHUNK_UNITS):
        hi = min(n, lo + _CHUNK_UNITS)
        ps, pe = paid.start[lo], paid.start[hi]
        ss, se = sched.start[lo], sched.start[hi]
        paid_rows, sched_rows = slice(ps, pe), slice(ss, se)
        sched_unit, sched_day = sched.units(sched_rows), sched.days(sched_rows)
        unit = np.concatenate((np.arange(lo, hi, dtype=np.int64), paid.units(paid_rows), sched_unit, sched_unit))
        t = np.concatenate((p.acq[lo:hi], paid.days(paid_rows), sched_day, sched_day + gap))
        del sched_unit, sched_day
        keep = ~p.flexible[unit] & (t >= p.acq[unit])
        unit, t = unit[keep], t[keep]
        if len(t) and int(t.max()) - _BASE < _SPAN:  # (always, for dates up to 2099 and W up to MAX_DAYS)
            # each (unit, date) once, in key order: fewer searches, each near the last one
            key = np.unique(unit * _SPAN + (t - _BASE))
            unit, t = key >> _SHIFT, (key & (_SPAN - 1)) + _BASE
            del key
        del keep
        paid_t = paid.at(unit, t, (lo, hi))
        late = (sched.at(unit, t, (lo, hi)) - paid_t) * 1000 > threshold
        last = sched.index(unit, t - gap, (lo, hi)) - 1
        some = last >= sched.start[unit]
        long_late = some & ((sched_max[np.where(some, last, 0)] - paid_t) * 1000 > threshold)
        hit = late & long_late
        np.minimum.at(w, unit[hit], t[hit])


def _flexible_write_off(p: Portfolio, w: Int) -> None:
    """w(u) for flexible units: on the days between two payment days access_end is fixed, so the first
    day with t - access_end >= W + 1 in that stretch is ceil(access_end + W + 1) (not before acq)."""
    acc = p.access
    ppd = p.ppd
    need = (p.company.write_off_dpd + 1) * ppd
    e = acc.e0.copy()
    seg = p.acq.copy()  # the current stretch starts here

    def first_day(units: Int) -> Int:
        return np.maximum(seg[units], -((-(e[units] + need[units])) // ppd[units]))  # ceil division

    for i, day in enumerate(acc.days.tolist()):
        rows = slice(acc.bounds[i], acc.bounds[i + 1])
        units = np.unique(acc.unit[rows]).astype(np.int64)
        t0 = first_day(units)
        hit = (t0 < day) & (w[units] == NO_DAY)
        w[units[hit]] = t0[hit]
        e[units] = np.maximum(e[units], day * ppd[units])
        np.add.at(e, acc.unit[rows], acc.amount[rows])
        seg[units] = np.maximum(p.acq[units], day)
    flex = np.flatnonzero(p.flexible & (w == NO_DAY))
    if len(flex):
        w[flex] = first_day(flex)


@dataclass
class _AsOf:
    """Every unit's quantities as of D (arrays over units)."""

    d: int
    acquired: Bool  # acq(u) <= D
    paid: Int  # P(u, D)
    sched: Int  # S(u, D)
    owed: Int  # O(u, D) (0 where undefined)
    dpd: Int  # dpd(u, D) (-1 where acq(u) > D)
    book: Bool
    in_fpd: Bool  # in the first-payment-default cohort of D


def _dpd(p: Portfolio, q: _Fixed, d: int, paid: Int, sched: Int) -> Int:
    n = p.size
    dpd = np.zeros(n, dtype=np.int64)
    late = np.flatnonzero(~p.flexible & ((sched - paid) * 1000 > q.threshold))
    # earliest scheduled date s <= D with S(u, s) > P(u, D) + 0.005: a binary search on the running max
    lo = q.sched.start[late]
    hi = q.sched.index(late, np.full(len(late), d)) - 1  # S(u, D) itself qualifies: the answer is <= hi
    target = paid[late]
    hi = np.maximum(hi, lo - 1)
    last = max(len(q.sched_max) - 1, 0)  # a closed search's lo may be past the end (read, then ignored)
    while (open_ := lo < hi).any():
        mid = (lo + hi) // 2
        above = (q.sched_max[np.where(open_, mid, np.minimum(lo, last))] - target) * 1000 > q.threshold
        hi = np.where(open_ & above, mid, hi)
        lo = np.where(open_ & ~above, mid + 1, lo)
    # (none: a unit owing only because it was refunded more than it paid, with nothing scheduled)
    found = lo <= hi
    dpd[late[found]] = d - q.sched.days(lo[found])
    flex = p.flexible
    if flex.any():
        e = p.access.end(d)  # access_end * ppd
        behind = np.maximum(d * p.ppd - e, 0)
        dpd[flex] = behind[flex] // p.ppd[flex]
    dpd[p.acq > d] = -1
    return dpd


def _sums_at(stream: _DayStream, days: set[int]) -> dict[int, Int]:
    """Every unit's sum of the stream's amounts dated <= each of these days: one pass over the rows
    in date order (each day's sums are the previous day's plus the rows between)."""
    out: dict[int, Int] = {}
    acc: Int | None = None
    prev = 0
    for t in sorted(days):
        acc = stream.between(None, t) if acc is None else acc + stream.between(prev, t)
        out[t], prev = acc, t
    return out


def _as_of(p: Portfolio, q: _Fixed, d: int, paid: Int, sched: Int) -> _AsOf:
    """``paid``, ``sched``: every unit's P(u, D) and S(u, D)."""
    owed = np.where(p.has_c, np.maximum(p.contract_value - paid, 0), 0)
    acquired = p.acq <= d
    f = p.first_payment_due
    return _AsOf(
        d=d,
        acquired=acquired,
        paid=paid,
        sched=sched,
        owed=owed,
        dpd=_dpd(p, q, d, paid, sched),
        book=_book(p, q, d, owed),
        in_fpd=~p.flexible & (f > d - YEAR) & (f <= d - FPD_DAYS),
    )


def _book(p: Portfolio, q: _Fixed, d: int, owed: Int) -> Bool:
    return (p.acq <= d) & p.has_c & (owed * 1000 > q.threshold) & (q.write_off > d)


def _gross(p: Portfolio, q: _Fixed, d: int, paid: Int) -> tuple[Int, Bool]:
    owed = np.where(p.has_c, np.maximum(p.contract_value - paid, 0), 0)
    return owed, _book(p, q, d, owed)


def _bucket(dpd: Int) -> Int:
    return np.searchsorted(BUCKET_EDGES, dpd, side="left")


def _ratio(num: int | Fraction, den: int | Fraction) -> float | None:
    return None if den == 0 else float(Fraction(num) / Fraction(den))


def _sum(values: Int, mask: Bool) -> int:
    return int(values[mask].sum(dtype=np.int64))


class Quality:
    """The measures of one as-of date, for any segment (a mask over units)."""

    def __init__(self, p: Portfolio, as_of: date, day: _Day) -> None:
        self.p, self.q, self.day = p, _fixed(p), day
        self.d = as_of.toordinal()
        d = self.d
        # every unit's P and S at the dates the measures need, in one pass over each stream
        gross_days = [d - RATIO_STEP * i for i in range(RATIO_DATES)]
        paid_at = _sums_at(p.paid, {*gross_days, d, *(d - k for k in COLLECTION_DAYS), d - ACTIVE_WINDOW})
        sched_at = _sums_at(p.sched, {d, *(d - k for k in COLLECTION_DAYS)})
        self.now = _as_of(p, self.q, d, paid_at[d], sched_at[d])
        self.gross = [_gross(p, self.q, t, paid_at[t]) for t in gross_days]
        self.collect = {}
        for k in COLLECTION_DAYS:
            self.collect[k] = (self.now.sched - sched_at[d - k], self.now.paid - paid_at[d - k])
        owed = np.maximum(p.contract_value - paid_at[d - ACTIVE_WINDOW], 0)
        self.owed_start = np.where(p.has_c, owed, 0)

    def measures(self, segment: Bool) -> dict[str, Any]:
        p, q, now, d = self.p, self.q, self.now, self.d
        money = 10**p.scale
        book = now.book & segment
        gross = _sum(now.owed, book)
        bucket = _bucket(now.dpd)
        aging, aging_count = {}, {}
        for i, name in enumerate(BUCKETS):
            held = book & (bucket == i)
            aging[name] = _ratio(_sum(now.owed, held), gross)
            aging_count[name] = int(held.sum())
        rate, rate_gross = {}, {}
        for k, (due, col) in self.collect.items():
            eligible = segment & ~p.flexible & now.acquired & (q.write_off > d - k)
            positive = eligible & (due > 0)
            got = np.minimum(np.maximum(col, 0), due)
            rate[str(k)] = _ratio(_sum(got, positive), _sum(due, positive))
            rate_gross[str(k)] = _ratio(_sum(col, eligible), _sum(due, eligible))
        recent_wo = segment & (q.write_off > d - YEAR) & (q.write_off <= d)
        write_offs = _sum(q.wo_amount, recent_wo)
        gross_total = sum(_sum(owed, in_book & segment) for owed, in_book in self.gross)
        fpd = now.in_fpd & segment
        fpd_n = int(fpd.sum())
        risk = self.day.at_risk[30] & self.day.active & p.has_c & segment
        lagged = self.day.earlier & p.has_c & segment
        return {
            "gross_receivable": float(Fraction(gross, money)),
            "aging": aging,
            "aging_count": aging_count,
            "collection_rate": rate,
            "collection_rate_gross": rate_gross,
            "write_offs_12m": float(Fraction(write_offs, money)),
            "write_off_ratio_12m": _ratio(Fraction(write_offs) * RATIO_DATES, gross_total),
            "recoveries_12m": float(Fraction(self._recoveries(segment), money)),
            "first_payment_default": {str(FPD_DAYS): _ratio(int((q.fpd_defaulted & fpd).sum()), fpd_n)},
            "first_payment_default_n": {str(FPD_DAYS): fpd_n},
            "par_lagged": {"30": _ratio(_sum(self.day.owed, risk), _sum(self.owed_start, lagged))},
            "vintage": self._vintage(segment),
        }

    def _recoveries(self, segment: Bool) -> int:
        """Completed CR rows dated in (D - 365, D] of units written off before the row's date."""
        rows = self.p.paid  # in date order
        lo, hi = rows._find(self.d - YEAR), rows._find(self.d)
        unit, day, amount = rows.unit[lo:hi], rows.day[lo:hi], rows.amount[lo:hi]
        keep = (self.q.write_off[unit] < day) & segment[unit]
        return int(amount[keep].sum(dtype=np.int64))

    def _vintage(self, segment: Bool) -> dict[str, dict[str, float | None]]:
        """Per acquisition month and age: the members' paid and scheduled sums, added up per month
        (exact integer sums into a small array) rather than a mask per month and age."""
        p, q, d = self.p, self.q, self.d
        last = int(np.datetime64(date.fromordinal(d), "M").astype(np.int64))
        cohort = segment & ~p.flexible & (q.month > last - VINTAGE_MONTHS) & (q.month <= last)
        units = np.flatnonzero(cohort)
        slot = q.month[units] - (last - VINTAGE_MONTHS + 1)  # 0 .. VINTAGE_MONTHS - 1
        acq = p.acq[units]
        sums = {}
        for a in VINTAGE_AGES:
            aged = acq + a <= d
            members, paid, sched = (np.zeros(VINTAGE_MONTHS, dtype=np.int64) for _ in range(3))
            np.add.at(members, slot[aged], 1)
            np.add.at(paid, slot[aged], q.vintage_paid[a][units[aged]])
            np.add.at(sched, slot[aged], q.vintage_sched[a][units[aged]])
            sums[a] = (members, paid, sched)
        out: dict[str, dict[str, float | None]] = {}
        for i in np.unique(slot).tolist():
            ages: dict[str, float | None] = {}
            for a, (members, paid, sched) in sums.items():
                if members[i]:
                    ages[str(a)] = _ratio(int(paid[i]), int(sched[i]))
            if ages:
                out[str(np.datetime64(last - VINTAGE_MONTHS + 1 + i, "M"))] = ages
        return out

    def tape(self, by_rows: bool = False) -> str:
        """The loan tape of docs/kpi_definitions.md §Q4 (every unit, whatever the segment: each row names its product).
        Made column by column; ``by_rows`` (or an id that needs quoting) writes it row by row instead."""
        p, q, now, d = self.p, self.q, self.now, self.d
        units = np.flatnonzero(now.acquired)
        ids = pa.array(p.receipt_ids, pa.string())
        # by receipt_id in code point order (= the UTF-8 byte order Arrow sorts by)
        idx = units[pc.sort_indices(ids.take(pa.array(units))).to_numpy()]
        rows = slice(0, p.paid._find(d))  # completed CR rows dated <= D, in date order
        received = p.paid.amount[rows] > 0
        last_day = _per_unit(np.maximum, p.paid.unit[rows][received], p.paid.day[rows][received], p.size, -1)
        del received
        active = self.day.active[idx]
        written = q.write_off[idx] <= d
        paid_off = p.has_c[idx] & (now.owed[idx] * 1000 <= q.threshold)
        status = np.where(written, 0, np.where(paid_off, 1, np.where(active, 2, 3)))
        bucket = _bucket(now.dpd[idx])
        if not by_rows:
            fast = _tape_columns(p, q, now, ids, idx, status, written, bucket, last_day)
            if fast is not None:
                return fast
        scale = p.scale
        buf = io.StringIO()
        out = csv.writer(buf)  # RFC 4180 lines (CRLF), as the examples are
        out.writerow(TAPE_HEADER)
        iso = _IsoDays()
        for j, u in enumerate(idx.tolist()):
            product = p.product_list[int(p.product_of_unit[u])]
            flexible = bool(p.flexible[u])
            has_c = bool(p.has_c[u])
            out.writerow((
                p.receipt_ids[u],
                p.customer_ids[u] if p.customer_ids else "",
                product.product_type,
                product.business_model,
                p.currency,
                iso(int(p.acq[u])),
                iso(int(p.end[u])) if p.has_end[u] else "",
                money2(int(p.contract_value[u]), scale) if has_c else "",
                "" if flexible else money2(int(now.sched[u]), scale),
                money2(int(now.paid[u]), scale),
                money2(int(now.owed[u]), scale) if has_c else "",
                int(now.dpd[u]),
                BUCKETS[int(bucket[j])],
                STATUSES[int(status[j])],
                iso(int(q.write_off[u])) if written[j] else "",
                ("true" if q.fpd_defaulted[u] else "false") if now.in_fpd[u] else "",
                iso(int(last_day[u])) if last_day[u] >= 0 else "",
            ))  # fmt: skip
        return buf.getvalue()


STATUSES = ("written_off", "paid_off", "active", "churned")
_NEEDS_QUOTES = r'[,"\r\n]'  # csv.writer quotes a field holding one of these (QUOTE_MINIMAL)


def _tape_columns(
    p: Portfolio,
    q: _Fixed,
    now: _AsOf,
    ids: pa.Array,
    idx: Int,
    status: Int,
    written: Bool,
    bucket: Int,
    last_day: Int,
) -> str | None:
    """The tape's CSV text made column by column by Arrow (no Python object per row): the same bytes
    as ``csv.writer`` writes, which quotes only a field holding a comma, a quote or a line break —
    so when an id, a product type or the currency holds one, None (the caller writes row by row)."""
    n = len(idx)
    take = pa.array(idx)
    names = pa.array([x.product_type for x in p.product_list], pa.string())
    models = pa.array([x.business_model for x in p.product_list], pa.string())
    customers = pa.array(p.customer_ids, pa.string()).take(take) if p.customer_ids else pa.nulls(n, pa.string())
    texts = (ids.take(take), customers, names, pa.array([p.currency], pa.string()))
    if any(len(t) and pc.any(pc.match_substring_regex(t, _NEEDS_QUOTES)).as_py() for t in texts):
        return None
    product = pa.array(p.product_of_unit[idx])
    flexible, has_c = p.flexible[idx], p.has_c[idx]

    def iso(days: Int, present: Bool | None = None) -> pa.Array:
        shown = days if present is None else np.where(present, days, EPOCH_ORDINAL)
        return pa.array((shown - EPOCH_ORDINAL).astype(np.int32), pa.date32(),
                        mask=None if present is None else ~present).cast(pa.string())  # fmt: skip

    table = pa.table({
        "receipt_id": texts[0],
        "customer_id": customers,
        "product_type": names.take(product),
        "business_model": models.take(product),
        "currency": pa.array([p.currency], pa.string()).take(pa.array(np.zeros(n, np.int64))),
        "acquired_on": iso(p.acq[idx]),
        "expected_end": iso(p.end[idx], p.has_end[idx]),
        "contract_value": _money2_column(p.contract_value[idx], p.scale, has_c),
        "scheduled_to_date": _money2_column(now.sched[idx], p.scale, ~flexible),
        "paid_to_date": _money2_column(now.paid[idx], p.scale, None),
        "outstanding": _money2_column(now.owed[idx], p.scale, has_c),
        "days_past_due": pa.array(now.dpd[idx]).cast(pa.string()),
        "bucket": pa.array(BUCKETS, pa.string()).take(pa.array(bucket)),
        "status": pa.array(STATUSES, pa.string()).take(pa.array(status)),
        "written_off_on": iso(q.write_off[idx], written),
        "first_payment_defaulted": pa.array(q.fpd_defaulted[idx], mask=~now.in_fpd[idx]).cast(pa.string()),
        "last_payment_on": iso(last_day[idx], last_day[idx] >= 0),
    })  # fmt: skip
    out = io.BytesIO()
    out.write((",".join(TAPE_HEADER) + "\r\n").encode())
    if n:
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style="none", eol="\r\n"))
    return out.getvalue().decode()


def _money2_column(values: Int, scale: int, present: Bool | None) -> pa.Array:
    """``money2`` of every value, as strings (nulls where not ``present``)."""
    if scale <= 2:
        cents = values * 10 ** (2 - scale)
    else:
        step = 10 ** (scale - 2)
        cents, rest = np.divmod(values, step)
        cents = cents + ((2 * rest > step) | ((2 * rest == step) & (cents % 2 == 1)))
    whole, part = np.divmod(np.abs(cents), 100)
    sign = pa.array(np.where(cents < 0, "-", ""), pa.string())
    text = pc.binary_join_element_wise(
        sign, pa.array(whole).cast(pa.string()), ".", pc.utf8_lpad(pa.array(part).cast(pa.string()), 2, "0"), ""
    )
    if present is not None:
        text = pc.if_else(pa.array(present), text, pa.nulls(len(values), pa.string()))
    return text


class _IsoDays:
    """ISO dates of ordinals, remembered (a tape repeats a few thousand dates a million times)."""

    def __init__(self) -> None:
        self.seen: dict[int, str] = {}

    def __call__(self, ordinal: int) -> str:
        text = self.seen.get(ordinal)
        if text is None:
            text = self.seen[ordinal] = date.fromordinal(ordinal).isoformat()
        return text


def money2(value: int, scale: int) -> str:
    """Scaled money as a decimal with exactly two places, rounded half to even."""
    if scale <= 2:
        cents = value * 10 ** (2 - scale)
    else:
        step = 10 ** (scale - 2)
        cents, rest = divmod(value, step)  # floor: rest in [0, step)
        if 2 * rest > step or (2 * rest == step and cents % 2):
            cents += 1
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"
