"""Reading the fleet-health window (issue 25): one binary COPY per table into numpy arrays against the
rows fetched one by one (the code before), on the same database in the same run.

    .venv/bin/python bench/health_window_bench.py [--units 100000] [--days 36]

A fresh database on the local stack with N installed units of three kits and 36 days of
``telemetry_daily`` and ``unit_health_daily`` for each (generated in SQL), then the window of the last
day read by ``repository.load_window`` (ours) and by ``rowwise`` below (the baseline: the previous
``load_window``, kept here verbatim), each twice, the best time kept; both must give the same arrays
(to 1e-6: a ``real`` read as text is its shortest decimal, read binary its exact float32 value).
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import fields
from datetime import date, timedelta

import numpy as np
import psycopg

from backoffice.config import load_settings
from backoffice.db import connect
from backoffice.health import repository
from backoffice.health.rules import V_NOMINAL, WINDOW_DAYS, Thresholds, Window
from devtools.stack import drop_database, fresh_database

DB = "paygo_bench_health_window"
DAY = date(2026, 6, 1)


def populate(conn: psycopg.Connection, units: int, days: int) -> None:
    kits = [("W10", 10, 6, "lead_acid"), ("W50", 50, 20, "lifepo4"), ("W100", 100, 60, "lifepo4")]
    for code, wp, ah, chem in kits:
        conn.execute(
            """insert into products (code, name, business_model, currency, price_per_day, panel_wp, battery_ah,
                                     battery_chemistry) values (%s, %s, 'flexible', 'KES', 3500, %s, %s, %s)""",
            (code, code, wp, ah, chem),
        )
    conn.execute(
        """insert into units (serial, product_id, state, latitude, longitude, installed_at)
           select 'WB' || lpad(g::text, 8, '0'),
                  (select id from products where code = (array['W10', 'W50', 'W100'])[1 + g %% 3]),
                  'installed', -5 + random() * 10, 30 + random() * 10, %s::date - 400
             from generate_series(1, %s) g""",
        (DAY, units),
    )
    conn.execute(
        """insert into telemetry_daily (unit_id, day, energy_in_wh, energy_out_wh, reports)
           select u.id, %(day)s::date - d, random() * 200, random() * 150, 72
             from units u cross join generate_series(0, %(days)s - 1) d""",
        {"day": DAY, "days": days},
    )
    conn.execute(
        """insert into unit_health_daily (unit_id, day, received, capacity_ah, soh, min_soc, max_soc, end_soc,
                                          hours_hot, hours_locked, hours_cut, hours_full, last_rssi, pv_clearness)
           select u.id, %(day)s::date - d, 72, case when random() < 0.5 then 20 * random() end,
                  case when random() < 0.3 then random() end, random() * 0.5, 0.5 + random() * 0.5, random(),
                  random() * 3, case when random() < 0.05 then 24 else 0 end, random(), random() * 8,
                  -110 + (random() * 50)::int, case when random() < 0.8 then random() end
             from units u cross join generate_series(0, %(days)s - 1) d""",
        {"day": DAY, "days": days},
    )
    conn.execute("analyze")


def same(a: Window, b: Window) -> bool:
    for f in fields(Window):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            # rtol: a ``real`` read as text is its shortest decimal, read binary its exact float32 value.
            if x.shape != y.shape or not np.allclose(
                x.astype(np.float64), y.astype(np.float64), rtol=1e-6, atol=0, equal_nan=True
            ):
                bad = ~((x == y) | (np.isnan(x.astype(float)) & np.isnan(y.astype(float))))
                print(f"differs: {f.name}", np.argwhere(bad)[:3], x[bad][:3], y[bad][:3])
                return False
        elif x != y:
            print(f"differs: {f.name}")
            return False
    return True


def timed(fn, conn: psycopg.Connection, t: Thresholds) -> tuple[float, Window]:  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(2):
        t0 = time.perf_counter()
        out = fn(conn, DAY, t)
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=WINDOW_DAYS)
    args = ap.parse_args()
    settings = load_settings()
    db = fresh_database(settings, DB)
    try:
        with connect(db, "bench") as conn:
            t0 = time.perf_counter()
            populate(conn, args.units, args.days)
            conn.commit()
            rows = 2 * args.units * args.days
            print(
                f"generated {args.units:,} units × {args.days} days ({rows:,} rows) in {time.perf_counter() - t0:.0f} s"
            )
            t = Thresholds()
            ours, a = timed(repository.load_window, conn, t)
            base, b = timed(rowwise, conn, t)
            assert same(a, b), "the two readings of the window differ"
        print(f"ours      load_window, binary COPY into arrays   {ours:8.2f} s  ({rows / ours:,.0f} rows/s)")
        print(f"baseline  the rows one by one (before issue 25)   {base:8.2f} s  ({rows / base:,.0f} rows/s)")
        print(
            f"speed-up {base / ours:.1f}x; same arrays; "
            f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )
    finally:
        drop_database(settings, DB)


def rowwise(conn: psycopg.Connection, day: date, t: Thresholds, days: int = WINDOW_DAYS) -> Window:
    """The baseline: the window as ``repository.load_window`` read it before issue 25 (row by row)."""
    first = day - timedelta(days=days - 1)
    units = conn.execute(
        """select u.id, p.panel_wp, p.battery_ah::float8, p.battery_chemistry,
                  floor(coalesce(u.latitude, 0) / 0.5)::int * 1000 + floor(coalesce(u.longitude, 0) / 0.5)::int
             from units u join products p on p.id = u.product_id
            where u.state = 'installed' and coalesce(u.installed_at::date, %s) <= %s order by u.id""",
        (day, day),
    ).fetchall()
    n = len(units)
    ids = np.array([u[0] for u in units], np.int64)
    pos = {int(u): i for i, u in enumerate(ids)}

    def grid() -> np.ndarray:
        return np.full((n, days), np.nan)

    cols = {k: grid() for k in ("energy_in", "energy_out", "reports", "received", "capacity_ah", "min_soc",
                                "max_soc", "end_soc", "hours_hot", "hours_locked", "hours_cut",
                                "hours_full", "last_rssi", "pv_clearness")}  # fmt: skip
    for uid, d, e_in, e_out, reports in conn.execute(
        """select unit_id, day, energy_in_wh, energy_out_wh, reports from telemetry_daily
            where day between %s and %s""",
        (first, day),
    ):
        i = pos.get(uid)
        if i is not None:
            j = (d - first).days
            cols["energy_in"][i, j], cols["energy_out"][i, j], cols["reports"][i, j] = e_in, e_out, reports
    names = (
        "received",
        "capacity_ah",
        "min_soc",
        "max_soc",
        "end_soc",
        "hours_hot",
        "hours_locked",
        "hours_cut",
        "hours_full",
        "last_rssi",
        "pv_clearness",
    )
    for row in conn.execute(
        f"select unit_id, day, {', '.join(names)} from unit_health_daily where day between %s and %s",
        (first, day),
    ):
        i = pos.get(row[0])
        if i is not None:
            j = (row[1] - first).days
            for k, v in zip(names, row[2:], strict=True):
                cols[k][i, j] = np.nan if v is None else v
    cols["received"] = np.nan_to_num(cols["received"])
    past = np.full(n, np.nan)
    for uid, best in conn.execute(
        "select unit_id, max(soh) from unit_health_daily where day between %s and %s and soh is not null group by 1",
        (day - timedelta(days=t.soh_drop_days), day - timedelta(days=1)),
    ):
        if uid in pos:
            past[pos[uid]] = best
    flags = np.zeros(n)
    for uid, k in conn.execute(
        """select unit_id, count(*) from unit_events where kind = 'tamper' and ts >= %s::date - 6
              and ts < %s::date + 1 group by 1""",
        (day, day),
    ):
        if uid in pos:
            flags[pos[uid]] = k
    return Window(
        unit_id=ids, first_day=first,
        panel_wp=np.array([float(u[1]) for u in units]), battery_ah=np.array([float(u[2]) for u in units]),
        v_nom=np.array([V_NOMINAL[u[3]] for u in units]), cell=np.array([u[4] for u in units], np.int64),
        soh_past=past, tamper_events=flags, **cols,
    )  # fmt: skip


if __name__ == "__main__":
    main()
