"""Money-loop benchmark (issue 5): callback-to-token latency at 100 payments/s and the highest
sustained rate, against the real web app (`paygo api run`, one uvicorn process) and PostgreSQL.

Each payment is an M-Pesa validation then a confirmation (`paygo payments simulate`'s generator,
open loop); the confirmation's answer comes after the token is committed, so its latency is the
callback-to-token latency. Baseline, same run: `GET /health` at the same rate (the HTTP floor).

    .venv/bin/python bench/payments_bench.py [--accounts 2000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from backoffice.config import load_settings
from backoffice.contracts.service import sign_contract
from backoffice.db import connect
from backoffice.registry import repository as registry
from backoffice.registry.schemas import NewContract
from backoffice.registry.service import register_unit
from devtools.mobile_money import Payer, Result, Simulator
from devtools.stack import fresh_database

ROOT = Path(__file__).resolve().parent.parent
DB = "paygo_bench_payments"
console = Console()


def prepare(accounts: int) -> tuple[str, list[Payer]]:
    settings = load_settings()
    bench = fresh_database(settings, DB)
    url = bench.database_url
    with connect(bench, "bench") as conn:
        product = registry.insert_product(
            conn, code="LAMP", name="Lamp", business_model="flexible", currency="KES", hardware_cost=450_000,
            deposit_amount=50_000, price_per_day=3_500, price_to_own=900_000, contract_days=365, deposit_days=7,
        )  # fmt: skip
        numbers = []
        for i in range(accounts):
            customer = registry.insert_customer(conn, f"Bench {i}", f"2547{i:08d}", "Kisumu", "Kisumu", 0.0, 34.7)
            unit = register_unit(conn, settings.secret_key, f"BENCH{i:06d}", product)
            # Deposit already paid, so every benchmark payment buys days and issues a token.
            contract = sign_contract(conn, NewContract(customer, unit, product, date(2026, 11, 1)),
                                     deposit_paid_on=date(2026, 11, 1), secret_key=settings.secret_key)  # fmt: skip
            row = conn.execute("select account_number from contracts where id = %s", (contract,)).fetchone()
            assert row is not None
            numbers.append(str(row[0]))
        conn.commit()
    with connect(bench, "bench", autocommit=True) as conn:
        # A freshly loaded database: let the planner statistics and visibility maps settle first,
        # as they have on a running system (else autovacuum lands in the middle of the measurement).
        conn.execute("vacuum analyze")
    return url, [Payer(n, "105.00") for n in numbers]  # 3 days at 35 KES


async def health(base: str, rate: float, count: int) -> Result:
    result = Result()
    async with httpx.AsyncClient(timeout=30) as client:

        async def one() -> None:
            start = time.perf_counter()
            reply = await client.get(base + "/health")
            if reply.status_code == 200:
                result.latencies.append(time.perf_counter() - start)

        tasks = []
        begin = time.perf_counter()
        for i in range(count):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
        result.elapsed = time.perf_counter() - begin
    result.sent = count
    return result


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes of the web app")
    parser.add_argument("--seconds", type=float, default=30, help="duration of the 100/s run")
    parser.add_argument("--step-seconds", type=float, default=10, help="duration of each step of the ramp")
    args = parser.parse_args()

    with console.status(f"seeding {args.accounts} accounts into {DB} …"):
        url, payers = prepare(args.accounts)
    settings = load_settings()
    port = settings.api_port + 50
    env = {**os.environ, "PAYGO_DATABASE_URL": url, "PAYGO_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "paygo"), "api", "run", "--port", str(port), "--workers", str(args.workers)],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        rows = []
        with console.status("warming up: 5 s at 50 payments/s (pools, prepared statements) …"):
            asyncio.run(Simulator(base, payers, seed=99).run(50, 250))
        with console.status("baseline: GET /health at 100/s …"):
            floor = asyncio.run(health(base, 100, int(100 * args.seconds)))
        rows.append(("baseline GET /health", 100, floor))
        with console.status("payments at 100/s …"):
            at_100 = asyncio.run(Simulator(base, payers, seed=1).run(100, int(100 * args.seconds)))
        rows.append(("payments (validation + confirmation)", 100, at_100))
        sustained = 0.0
        for rate in (110, 120, 130, 140, 160, 200, 250, 300):
            with console.status(f"payments at {rate}/s …"):
                r = asyncio.run(Simulator(base, payers, seed=rate).run(rate, int(rate * args.step_seconds)))
            rows.append(("payments, ramp", rate, r))
            achieved = len(r.latencies) / r.elapsed
            p99 = r.percentile(99) or 1e9
            if r.errors or p99 > 1.0 or achieved < 0.95 * rate:
                break
            sustained = rate
        if not sustained and (at_100.percentile(99) or 1e9) <= 1.0:
            sustained = 100
    finally:
        server.terminate()
        server.wait(30)

    table = Table(title=f"callback-to-token latency, {args.accounts} accounts, {args.workers} uvicorn processes")
    for col in ("run", "offered /s", "done", "achieved /s", "p50 ms", "p99 ms", "errors"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for name, rate, r in rows:
        table.add_row(name, str(rate), str(len(r.latencies)), f"{len(r.latencies) / r.elapsed:.0f}",
                      ms(r.percentile(50)), ms(r.percentile(99)), str(len(r.errors)))  # fmt: skip
    console.print(table)
    console.print(f"p99 at 100 payments/s: {ms(at_100.percentile(99))} ms (target <= 200 ms)")
    console.print(f"highest sustained rate tried: {sustained:.0f} payments/s (p99 <= 1 s, >= 95 % completed)")
    with psycopg.connect(url) as conn:
        tokens = conn.execute("select count(*) from tokens where inbox_id is not null").fetchone()
        console.print(f"tokens issued for payments: {tokens[0] if tokens else 0}")
    sys.exit(0)


if __name__ == "__main__":
    main()
