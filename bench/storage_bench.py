"""Storage per reading (issue 24, docs/sizing.md): the simulator's readings (every field of the wire
contract, the default fault mix) written through the ingest writer into a fresh database, then the
bytes on disk measured per reading: the telemetry table with its indexes and TOAST, and the daily
rollup per unit-day. Compressed: the same rows as a gzip'd binary COPY (what a cold partition costs
archived). Baseline in the same run: the readings' JSON as units send them on the wire.

    .venv/bin/python bench/storage_bench.py [--units 2000] [--days 14]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

import protocol
from backoffice.config import load_settings
from devtools.demo_data import synthetic_specs
from devtools.stack import drop_database, fresh_database
from firmware_sim.engine import FleetSim
from ingest import writer

DB = "paygo_bench_storage"
READINGS_PER_DAY = 72  # one every 20 minutes
console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    settings = fresh_database(load_settings(), DB)
    specs = synthetic_specs(args.units, seed=1)
    wire = 0
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(
                "insert into products (code, name, business_model, currency) values ('S', 's', 'flexible', 'KES')"
            )
            product = conn.execute("select id from products").fetchone()[0]  # type: ignore[index]
            add = "insert into units (serial, product_id, created_at) values (%s, %s, '2020-01-01') returning id"
            ids = np.array([conn.execute(add, (s.serial, product)).fetchone()[0] for s in specs])  # type: ignore[index]
            start = datetime(2024, 1, 1, tzinfo=UTC)
            conn.execute("select telemetry_ensure_partitions(%s, %s)", (start, start + timedelta(days=args.days + 8)))
            sim = FleetSim(specs, start, seed=1)
            written, t0 = 0, time.perf_counter()
            with console.status("writing the simulator's readings …"):
                while sim.now < start + timedelta(days=args.days):
                    rows: list[writer.ReadingRow] = []
                    for reports, _, _ in sim.advance_to(sim.now + timedelta(hours=6)):
                        if reports is None:
                            continue
                        for j, i in enumerate(reports.idx):
                            r = reports.reading(j)
                            if j % 50 == 0:  # the wire baseline on a sample: one reading a message
                                serial = specs[i].serial
                                wire += 50 * len(protocol.encode_telemetry(serial, [r]))
                            rows.append((int(ids[i]), r.ts, r.seq, r.ts, r.batt_v, r.batt_a, r.soc,
                                         r.batt_temp_c, r.pv_v, r.pv_w, r.pv_wh, r.load_wh, r.credit_s, r.locked,
                                         r.rssi, r.fw))  # fmt: skip
                    with conn.transaction():
                        written += writer.write_readings(conn, rows)
            seconds = time.perf_counter() - t0
            conn.execute("vacuum analyze telemetry")
            conn.execute("vacuum analyze telemetry_daily")
            size = conn.execute(
                """select coalesce(sum(pg_table_size(c.oid)), 0), coalesce(sum(pg_indexes_size(c.oid)), 0)
                   from pg_inherits i join pg_class c on c.oid = i.inhrelid
                   where i.inhparent = 'telemetry'::regclass"""
            ).fetchone()
            heap, index = int(size[0]), int(size[1])  # type: ignore[index]
            daily_rows = conn.execute("select count(*) from telemetry_daily").fetchone()[0]  # type: ignore[index]
            daily_bytes = conn.execute("select pg_total_relation_size('telemetry_daily')").fetchone()[0]  # type: ignore[index]
            buf = io.BytesIO()
            with conn.cursor() as cur, cur.copy("copy (select * from telemetry) to stdout (format binary)") as copy:
                for block in copy:
                    buf.write(block)
            raw_copy = buf.getbuffer().nbytes
            zipped = len(gzip.compress(buf.getvalue(), compresslevel=6))
    finally:
        drop_database(load_settings(), DB)
    per = written
    table = Table(title=f"{written:,} readings of {args.units:,} units over {args.days} days "
                        f"(written in {seconds:.1f} s, {written / seconds:,.0f} readings/s)")  # fmt: skip
    table.add_column("what")
    table.add_column("bytes per reading", justify="right")
    table.add_column("per 1,000,000 units per year", justify="right")
    year = 1_000_000 * READINGS_PER_DAY * 365

    def row(name: str, b: float) -> None:
        table.add_row(name, f"{b:,.1f}", f"{b * year / 1e12:,.2f} TB")

    row("baseline: the reading's JSON on the wire (one a message)", wire / per)
    row("telemetry heap (table + TOAST)", heap / per)
    row("telemetry indexes", index / per)
    row("telemetry on disk, uncompressed (heap + indexes)", (heap + index) / per)
    row("binary COPY of the rows", raw_copy / per)
    row("binary COPY, gzip -6 (archived partition)", zipped / per)
    table.add_row("daily rollup (telemetry_daily), per unit-day", f"{daily_bytes / max(daily_rows, 1):,.1f}",
                  f"{daily_bytes / max(daily_rows, 1) * 1_000_000 * 365 / 1e9:,.1f} GB")  # fmt: skip
    console.print(table)
    console.print(f"machine: {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
