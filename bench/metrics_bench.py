"""OpenPAYGO Metrics benchmark (issue 17): requests per second of ``POST /device_data`` with a
realistic hourly batch (3 readings of every mapped variable of the built-in format, condensed,
``ra`` auth with each unit's key) against the real device API (``paygo ingest device-api``, one
uvicorn process) and PostgreSQL; and its latency at 100 requests/s (open loop).

Baseline, same run: the same requests' plain JSON parse (``json.loads`` of each body, in this
process), the floor below which no server can answer. Also shown: the handler alone, in process,
without HTTP (``ingest.openpaygo_metrics.handle`` per request, committed), to tell the cost of
checking and storing from that of HTTP.

    .venv/bin/python bench/metrics_bench.py [--units 500] [--seconds 20] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from openpaygo import MetricsRequestHandler
from rich.console import Console
from rich.table import Table

from backoffice import crypto
from backoffice.config import Settings, load_settings
from backoffice.db import connect
from backoffice.migrate import migrate
from backoffice.registry import repository as registry
from backoffice.registry.service import register_unit
from devtools.postgres import admin_url
from devtools.stack import drop_database
from ingest import openpaygo_metrics
from protocol.openpaygo_metrics import DATA_FORMATS

ROOT = Path(__file__).resolve().parent.parent
DB = "paygo_bench_metrics"
FORMAT = DATA_FORMATS[1]  # batt_v, soc, pv_wh, load_wh, batt_temp_c every 20 minutes
console = Console(width=130)


def prepare(units: int) -> tuple[Settings, list[tuple[str, str]]]:
    """A database of its own (the running stack's server) with ``units`` units; their (serial, key)."""
    settings = load_settings()
    drop_database(settings, DB)
    with psycopg.connect(admin_url(settings), autocommit=True) as conn:
        conn.execute(f'create database "{DB}" owner paygo_owner')
    bench = settings.model_copy(update={"database_url": f"postgresql://paygo_owner@127.0.0.1:{settings.pg_port}/{DB}"})
    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        migrate(conn)
    out = []
    with connect(bench, "bench") as conn:
        product = registry.insert_product(conn, code="LAMP", name="Lamp", business_model="flexible", currency="KES",
                                          price_per_day=3_500)  # fmt: skip
        for i in range(units):
            unit = register_unit(conn, settings.secret_key, f"MB{i:06d}", product)
            row = conn.execute("select serial, openpaygo_key_enc from units where id = %s", (unit,)).fetchone()
            assert row is not None
            out.append((str(row[0]), crypto.decrypt(settings.secret_key, row[1])))
        conn.commit()
    with connect(bench, "bench", autocommit=True) as conn:
        conn.execute("vacuum analyze")
    return bench, out


def hourly_request(serial: str, key: str, count: int) -> bytes:
    """One unit's hourly batch as its firmware builds it (the official device-side builder):
    3 readings of every variable of the format, its token count and firmware, ``ra`` auth."""
    req = MetricsRequestHandler(serial, data_format=FORMAT, secret_key=key, auth_method="ra")
    req.set_request_count(count)
    req.set_data({"token_count": 1, "firmware_version": "2.4.1"})
    req.set_historical_data([{"batt_v": round(12.4 + i * 0.05, 2), "soc": round(0.55 + i * 0.01, 3),
                              "pv_wh": 4.5 + i, "load_wh": 2.25, "batt_temp_c": 31.5} for i in range(3)])  # fmt: skip
    return json.dumps(req.get_condensed_request_dict(), separators=(",", ":")).encode()


@dataclass
class Batches:
    """Requests per unit with increasing counts: each phase takes the next ``take`` of every unit."""

    units: list[tuple[str, str]]
    next_count: dict[str, int] = field(default_factory=dict)

    def take(self, n: int) -> list[bytes]:
        """``n`` requests round-robin over the units (a unit's requests in increasing count order)."""
        out = []
        for k in range(n):
            serial, key = self.units[k % len(self.units)]
            count = self.next_count.get(serial, 0) + 1
            self.next_count[serial] = count
            out.append(hourly_request(serial, key, count))
        return out


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def _post(client: httpx.AsyncClient, url: str, body: bytes, run: Run) -> None:
    start = time.perf_counter()
    try:
        answer = await client.post(url, content=body, headers={"content-type": "application/json"})
    except httpx.HTTPError as err:
        run.errors.append(repr(err))
        return
    if answer.status_code == 201:
        run.latencies.append(time.perf_counter() - start)
    else:
        run.errors.append(f"{answer.status_code} {answer.text[:100]}")


async def closed_loop(url: str, bodies: list[bytes], concurrency: int, units: int) -> Run:
    """As fast as ``concurrency`` clients go; a unit's requests stay in order (each unit has one client)."""
    run = Run()
    lanes: list[list[bytes]] = [[] for _ in range(concurrency)]
    for i, body in enumerate(bodies):
        lanes[(i % units) % concurrency].append(body)  # bodies go round-robin over the units
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def lane(items: list[bytes]) -> None:
            for body in items:
                await _post(client, url, body, run)

        begin = time.perf_counter()
        await asyncio.gather(*(lane(items) for items in lanes))
        run.elapsed = time.perf_counter() - begin
    return run


async def open_loop(url: str, bodies: list[bytes], rate: float) -> Run:
    run = Run()
    async with httpx.AsyncClient(timeout=30) as client:
        tasks = []
        begin = time.perf_counter()
        for i, body in enumerate(bodies):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(_post(client, url, body, run)))
        await asyncio.gather(*tasks)
        run.elapsed = time.perf_counter() - begin
    return run


def parse_only(bodies: list[bytes]) -> Run:
    run = Run()
    begin = time.perf_counter()
    for body in bodies:
        start = time.perf_counter()
        json.loads(body)
        run.latencies.append(time.perf_counter() - start)
    run.elapsed = time.perf_counter() - begin
    return run


def in_process(settings: Settings, bodies: list[bytes]) -> Run:
    run = Run()
    with connect(settings, "bench-handler") as conn:
        begin = time.perf_counter()
        for body in bodies:
            start = time.perf_counter()
            with conn.transaction():
                answer = openpaygo_metrics.handle(conn, body, settings.secret_key)
            if answer.status == 201:
                run.latencies.append(time.perf_counter() - start)
            else:
                run.errors.append(str(answer.body))
        run.elapsed = time.perf_counter() - begin
    return run


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20, help="duration of the 100/s run")
    parser.add_argument("--throughput-requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with console.status(f"seeding {args.units} units into {DB} …"):
        bench, units = prepare(args.units)
    batches = Batches(units)
    with console.status("building requests with the openpaygo device-side builder (ra auth) …"):
        warm = batches.take(500)
        handler_bodies = batches.take(1000)
        throughput_bodies = batches.take(args.throughput_requests)
        rate_bodies = batches.take(int(100 * args.seconds))
    size = sum(map(len, throughput_bodies)) / len(throughput_bodies)
    port = load_settings().device_api_port + 50
    env = {**os.environ, "PAYGO_DATABASE_URL": bench.database_url, "PAYGO_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "paygo"), "ingest", "device-api", "--port", str(port)],
                              env=env)  # fmt: skip
    url = f"http://127.0.0.1:{port}/device_data"
    rows = []
    try:
        for _ in range(150):
            try:
                httpx.get(url)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        rows.append(("baseline: json.loads of the same bodies", "-", parse_only(throughput_bodies)))
        with console.status("warming up …"):
            asyncio.run(closed_loop(url, warm, args.concurrency, args.units))
        with console.status("the handler in process (no HTTP) …"):
            rows.append(("handler in process, 1 connection", "-", in_process(bench, handler_bodies)))
        with console.status(f"POST /device_data, {args.concurrency} clients …"):
            fastest = asyncio.run(closed_loop(url, throughput_bodies, args.concurrency, args.units))
        rows.append((f"POST /device_data, {args.concurrency} clients", "max", fastest))
        with console.status("POST /device_data at 100/s …"):
            at_100 = asyncio.run(open_loop(url, rate_bodies, 100))
        rows.append(("POST /device_data, open loop", "100", at_100))
    finally:
        server.terminate()
        server.wait(30)

    title = (f"OpenPAYGO Metrics, hourly batch (3 x 5 variables, condensed, ra), {size:.0f} B a request, "
             f"{args.units} units, 1 uvicorn process")  # fmt: skip
    table = Table(title=title)
    for col in ("run", "offered /s", "done", "requests /s", "p50 ms", "p99 ms", "errors"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for name, offered, r in rows:
        table.add_row(name, offered, str(len(r.latencies)), f"{r.rate:,.0f}", ms(r.percentile(50)),
                      ms(r.percentile(99)), str(len(r.errors)))  # fmt: skip
    console.print(table)
    for name, _, r in rows:
        if r.errors:
            console.print(f"{name}: first error {r.errors[0]}")
    parse_rate = rows[0][2].rate
    ratio = parse_rate / max(fastest.rate, 1e-9)
    console.print(f"POST /device_data: {fastest.rate:,.0f} requests/s ({fastest.rate * 3:,.0f} readings/s) vs "
                  f"{parse_rate:,.0f} plain JSON parses/s of the same bodies ({ratio:,.0f}x)")  # fmt: skip
    console.print(f"p99 at 100 requests/s: {ms(at_100.percentile(99))} ms")
    with psycopg.connect(bench.database_url) as conn:
        stored = conn.execute("select count(*) from telemetry").fetchone()
        console.print(f"readings stored: {stored[0] if stored else 0}")
    sys.exit(0)


if __name__ == "__main__":
    main()
