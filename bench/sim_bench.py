"""Simulator benchmark (issue 4), in a database of its own on the local stack.

Backfill
  ours       `paygo sim backfill --units U --days D` (the real command, as a user runs it): readings/s
             and wall time of the history; making the demo customers first is timed apart.
  baseline   the same engine's readings written through the live ingest path's writer
             (`ingest.writer.write_readings`: COPY row by row into a stage, insert-on-conflict,
             rollups), for --baseline-units units over --baseline-days days, in the same run.
Realistic mode
  `paygo sim run --synthetic --no-device-login --units N --speed S`: one MQTT connection per unit,
  for each N of --fleet; how many stayed online, readings/s, and the process's CPU (per 1,000 units).

    .venv/bin/python bench/sim_bench.py [--units 10000 --days 90] [--fleet 1000,2000,4000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

from backoffice.config import Settings, load_settings
from devtools.demo_data import synthetic_specs
from devtools.stack import drop_database, fresh_database
from firmware_sim.engine import FleetSim
from ingest import writer

DB = "paygo_bench_sim"
console = Console()


def _cli(settings: Settings, *args: str, timeout: float = 7200) -> tuple[str, float]:
    env = {**os.environ, "PAYGO_DATABASE_URL": settings.database_url, "PAYGO_LOG_LEVEL": "WARNING",
           "COLUMNS": "200"}  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "paygo.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"paygo {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - t0


def backfill(settings: Settings, units: int, days: int) -> dict[str, float]:
    # Make the customers first (one day of history), so that the measured run is the history alone.
    out, made = _cli(settings, "sim", "backfill", "--units", str(units), "--days", "1", "--end", "2025-01-01")
    out, wall = _cli(settings, "sim", "backfill", "--units", str(units), "--days", str(days))
    m = re.search(r"([\d,]+) readings, ([\d,]+) payments, ([\d,]+) tokens in ([\d.]+) s", out.replace("\n", " "))
    if not m:
        raise SystemExit(f"no summary in the output of sim backfill:\n{out[-2000:]}")
    readings, payments, tokens = (int(m.group(i).replace(",", "")) for i in (1, 2, 3))
    seconds = float(m.group(4))
    return {"readings": readings, "payments": payments, "tokens": tokens, "seconds": seconds, "wall": wall,
            "made": made}  # fmt: skip


def baseline(settings: Settings, units: int, days: int) -> tuple[int, float]:
    """The same engine's readings through the ingest writer (its units made here, with ids)."""
    specs = synthetic_specs(units, seed=1)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("insert into products (code, name, business_model, currency) values ('BL', 'b', 'flexible', 'KES')"
                     " on conflict do nothing")  # fmt: skip
        product = conn.execute("select id from products where code = 'BL'").fetchone()[0]  # type: ignore[index]
        add = "insert into units (serial, product_id, created_at) values (%s, %s, '2020-01-01') returning id"
        ids = [conn.execute(add, (s.serial, product)).fetchone()[0] for s in specs]  # type: ignore[index]
        start = datetime(2024, 1, 1, tzinfo=UTC)
        conn.execute("select telemetry_ensure_partitions(%s, %s)", (start, start + timedelta(days=days + 8)))
        sim = FleetSim(specs, start, seed=1)
        unit_ids = np.array(ids)
        written, t0 = 0, time.perf_counter()
        while sim.now < start + timedelta(days=days):
            rows: list[writer.ReadingRow] = []
            for reports, _, _ in sim.advance_to(sim.now + timedelta(hours=2)):
                if reports is None:
                    continue
                for j, i in enumerate(reports.idx):
                    r = reports.reading(j)
                    rows.append((int(unit_ids[i]), r.ts, r.seq, r.ts, r.batt_v, r.batt_a, r.soc, r.batt_temp_c, r.pv_v,
                                 r.pv_w, r.pv_wh, r.load_wh, r.credit_s, r.locked, r.rssi, r.fw))  # fmt: skip
            with conn.transaction():
                written += writer.write_readings(conn, rows)
        return written, time.perf_counter() - t0


def fleet(settings: Settings, units: int, speed: float, seconds: float) -> dict[str, float]:
    args = ["sim", "run", "--synthetic", "--no-device-login", "--units", str(units), "--speed", str(speed),
            "--duration", str(seconds), "--start-days-ago", "2"]  # fmt: skip
    out, _ = _cli(settings, *args, timeout=seconds + 300)
    text = out.replace("\n", " ")
    m = re.search(r"ran ([\d.]+) s: units (\d+), most online (\d+), readings sent (\d+), messages (\d+), "
                  r"dropped (\d+), cpu ([\d.]+) s, largest lag of the physics (-?\d+)", text)  # fmt: skip
    if not m:
        raise SystemExit(f"no summary in the output of sim run:\n{out[-2000:]}")
    ran, n, online, sent, _, _, cpu, lag = (float(m.group(i)) for i in range(1, 9))
    return {"units": n, "online": online, "sent": sent, "ran": ran, "cpu": cpu, "lag": lag, "speed": speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--baseline-units", type=int, default=1000)
    parser.add_argument("--baseline-days", type=int, default=2)
    parser.add_argument("--fleet", default="1000,2000,4000", help="unit counts of the realistic-mode runs")
    parser.add_argument("--speed", type=float, default=1440, help="simulated seconds per second of those runs")
    parser.add_argument("--seconds", type=float, default=60, help="length of each realistic-mode run")
    parser.add_argument("--skip-backfill", action="store_true")
    args = parser.parse_args()
    with console.status("preparing the database …"):
        settings = fresh_database(load_settings(), DB)

    if not args.skip_backfill:
        with console.status(f"backfill: {args.units:,} units × {args.days} days …"):
            ours = backfill(settings, args.units, args.days)
        with console.status(f"baseline: ingest writer, {args.baseline_units:,} units × {args.baseline_days} days …"):
            n, secs = baseline(settings, args.baseline_units, args.baseline_days)
        t = Table(title=f"backfill: {args.units:,} units × {args.days} days")
        for c in ("run", "readings", "seconds", "readings/s"):
            t.add_column(c, justify="right" if c != "run" else "left")
        t.add_row("ours: paygo sim backfill", f"{ours['readings']:,.0f}", f"{ours['seconds']:.1f}",
                  f"{ours['readings'] / ours['seconds']:,.0f}")  # fmt: skip
        t.add_row(f"baseline: ingest writer ({args.baseline_units:,} units × {args.baseline_days} d)", f"{n:,}",
                  f"{secs:.1f}", f"{n / secs:,.0f}")  # fmt: skip
        console.print(t)
        console.print(f"payments through the credit service: {ours['payments']:,.0f}, tokens {ours['tokens']:,.0f}; "
                      f"command wall time {ours['wall']:.1f} s; making {args.units:,} demo customers first took "
                      f"{ours['made']:.1f} s (target >= 150,000 readings/s)")  # fmt: skip

    t = Table(title=f"realistic mode: one MQTT connection per unit, {args.speed:g}x, {args.seconds:g} s per run")
    for c in ("units", "most online", "readings/s", "CPU % of a core", "CPU % per 1,000 units", "physics lag (sim s)"):
        t.add_column(c, justify="right")
    for n_units in (int(x) for x in args.fleet.split(",")):
        with console.status(f"realistic mode: {n_units:,} units …"):
            r = fleet(settings, n_units, args.speed, args.seconds)
        share = r["cpu"] / r["ran"] * 100
        t.add_row(f"{n_units:,}", f"{r['online']:,.0f}", f"{r['sent'] / r['ran']:,.0f}", f"{share:.0f}",
                  f"{share / n_units * 1000:.1f}", f"{r['lag']:.0f}")  # fmt: skip
    console.print(t)
    drop_database(settings, DB)  # the history takes gigabytes: give them back
    console.print(f"at {args.speed:g}x a unit reports every {1200 / args.speed:.2f} s; in real time (1x) every "
                  "20 minutes, so these runs carry that many times the real-time load")  # fmt: skip


if __name__ == "__main__":
    main()
