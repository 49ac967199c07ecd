"""Connections per service (issue 24, docs/sizing.md): each long-running process of the platform
started against a fresh database on the local stack, the web app and the device API loaded with
concurrent requests, and PostgreSQL's own count of connections per application_name sampled
throughout (pg_stat_activity). The bound from the code is printed beside what was seen.

    .venv/bin/python bench/connections_bench.py [--seconds 20] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from backoffice.config import load_settings
from devtools.stack import drop_database, fresh_database

DB = "paygo_bench_connections"
ROOT = Path(__file__).resolve().parent.parent
console = Console()
BOUND = {
    "api": "pool of 1..10 per uvicorn process (--workers N: 10 N)",
    "device-api": "pool of 1..10 per process",
    "ingest": "2 per worker (the database side's, the slot leases')",
    "delivery": "1 per process",
    "worker": "1 per running task (+2 short ones recording the run)",
    "exporter": "1",
}


async def load(url: str, seconds: float, concurrency: int) -> int:
    done = 0
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await client.get(url)
            done += 1

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(one(client) for _ in range(concurrency)))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    base = load_settings()
    settings = fresh_database(base, DB)
    api_port, dev_port, metrics_port = 37501, 37502, 37503
    env = {**os.environ, "PAYGO_DATABASE_URL": settings.database_url, "PAYGO_API_PORT": str(api_port),
           "PAYGO_DEVICE_API_PORT": str(dev_port), "PAYGO_LOG_LEVEL": "WARNING",
           "PAYGO_INGEST_GROUP": "connbench", "PAYGO_MQTT_TOPIC_ROOT": "connbench/paygo/v1/units"}  # fmt: skip
    paygo = str(ROOT / ".venv" / "bin" / "paygo")
    commands = {
        "api": [paygo, "api", "run", "--workers", "2"],
        "device-api": [paygo, "ingest", "device-api"],
        "ingest": [paygo, "ingest", "run", "--worker-id", "connbench"],
        "delivery": [paygo, "delivery", "run"],
        "exporter": [paygo, "metrics", "serve", "--port", str(metrics_port)],
    }
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
    seen: dict[str, int] = {}
    try:
        for port in (api_port, dev_port, metrics_port):  # started: each answers
            deadline = time.monotonic() + 180
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/" + ("metrics" if port == metrics_port else "health"))
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        time.sleep(5)  # the ingest worker and delivery connect too
        with psycopg.connect(settings.database_url, autocommit=True) as conn:

            def sample() -> None:
                rows = conn.execute(
                    """select application_name, count(*) from pg_stat_activity
                       where datname = current_database() and pid <> pg_backend_pid() group by 1"""
                ).fetchall()
                for app, n in rows:
                    seen[app or "?"] = max(seen.get(app or "?", 0), int(n))

            sample()
            idle = dict(seen)
            seen.clear()

            async def loaded() -> tuple[int, int]:
                stop = asyncio.Event()

                async def sampler() -> None:
                    while not stop.is_set():
                        sample()
                        await asyncio.sleep(0.2)

                task = asyncio.create_task(sampler())
                a, b = await asyncio.gather(
                    load(f"http://127.0.0.1:{api_port}/ready", args.seconds, args.concurrency),
                    load(f"http://127.0.0.1:{dev_port}/ready", args.seconds, args.concurrency),
                )
                httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30)
                stop.set()
                await task
                return a, b

            requests_api, requests_dev = asyncio.run(loaded())
            sample()
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_database(base, DB)
    title = (f"connections per service ({args.concurrency} concurrent requests on each app for {args.seconds:.0f} s: "
             f"{requests_api:,} to the web app, {requests_dev:,} to the device API)")  # fmt: skip
    table = Table(title=title)
    for col in ("application_name", "idle", "most under load", "bound from the code"):
        table.add_column(col)
    for app in sorted(set(idle) | set(seen)):
        table.add_row(app, str(idle.get(app, 0)), str(seen.get(app, 0)), BOUND.get(app, ""))
    console.print(table)
    console.print(f"machine: {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")
    sys.exit(0)


if __name__ == "__main__":
    main()
