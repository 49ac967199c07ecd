"""Staff identity benchmark (issue 12): what logins cost a request.

Two web apps on one database, in one run: the real one (every staff route checks its session:
one indexed look-up of the cookie's hash, the role, the security headers) and a baseline, the same
app with the session check replaced by a fixed member of staff (no look-up). Measured: an
authenticated ``GET /`` (the units page, the call centre's most frequent request), closed loop, and
M-Pesa payment callbacks (validation + confirmation, open loop at 100/s), which stay outside the
login and pass only through the headers. Rounds alternate between the two apps.

    .venv/bin/python bench/auth_bench.py [--requests 1000] [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table

from backoffice.audit.schemas import Actor
from backoffice.config import load_settings
from backoffice.db import connect
from backoffice.staff import guard, service
from backoffice.staff.schemas import Staff
from devtools import demo_data
from devtools.mobile_money import Payer, Simulator
from devtools.stack import fresh_database
from paygo.web import create_app

ROOT = Path(__file__).resolve().parent.parent
DB = "paygo_bench_auth"
console = Console(width=140)
FIXED = Staff(1, "bench-agent", frozenset({"call_centre"}), "session", "x")


def baseline_app() -> FastAPI:
    """The same app without the session check: every request is the same member of staff."""
    app = create_app()
    app.dependency_overrides[guard.authenticate] = lambda: FIXED
    return app


def prepare(customers: int) -> tuple[str, str, list[Payer]]:
    settings = load_settings()
    bench = fresh_database(settings, DB)
    with connect(bench, "bench") as conn:
        demo_data.seed(conn, settings.secret_key, customers)
        service.add_user(conn, "bench-agent", ["call_centre"], Actor("bench"), "bench agent password")
        session = service.login(conn, bench, "bench-agent", "bench agent password", "127.0.0.1", "bench")
        assert isinstance(session, service.NewSession), session
        accounts = [r[0] for r in conn.execute("select account_number from contracts where state = 'active'")]
        conn.commit()
    with connect(bench, "bench", autocommit=True) as conn:
        conn.execute("vacuum analyze")
    return bench.database_url, session.token, [Payer(a, "105.00") for a in accounts]


def serve(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env=env)
    for _ in range(150):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"the app on port {port} did not start")


def page_views(base: str, cookie: str, n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, cookies={"paygo_session": cookie}, timeout=30) as web:
        for _ in range(n):
            start = time.perf_counter()
            reply = web.get("/")
            out.append(time.perf_counter() - start)
            if reply.status_code != 200:
                raise SystemExit(f"GET / answered {reply.status_code}")
    return out


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000, help="page views per app and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20, help="duration of each 100/s payment run")
    args = parser.parse_args()

    with console.status(f"seeding {args.customers} customers into {DB} …"):
        url, cookie, payers = prepare(args.customers)
    settings = load_settings()
    env = {**os.environ, "PAYGO_DATABASE_URL": url, "PAYGO_LOG_LEVEL": "WARNING",
           "PAYGO_SESSION_IDLE_MINUTES": "600"}  # fmt: skip
    real_port, base_port = settings.api_port + 60, settings.api_port + 61
    python = str(ROOT / ".venv" / "bin" / "python")
    uvicorn = [python, "-m", "uvicorn", "--factory", "--host", "127.0.0.1", "--log-level", "warning"]
    real = serve([*uvicorn, "paygo.web:create_app", "--port", str(real_port)], env, real_port)
    baseline = serve([*uvicorn, "--app-dir", str(ROOT / "bench"), "auth_bench:baseline_app", "--port",
                      str(base_port)], env, base_port)  # fmt: skip
    apps = {
        "with logins": f"http://127.0.0.1:{real_port}",
        "baseline (no session check)": f"http://127.0.0.1:{base_port}",
    }
    views: dict[str, list[float]] = {name: [] for name in apps}
    pays: dict[str, list[float]] = {name: [] for name in apps}
    errors: dict[str, int] = dict.fromkeys(apps, 0)
    try:
        for base in apps.values():  # warm-up: pools, prepared statements, template caches
            page_views(base, cookie, 100)
            asyncio.run(Simulator(base, payers, seed=7).run(50, 100))
        for r in range(args.rounds):
            for name, base in apps.items():
                with console.status(f"round {r + 1}: {args.requests} page views, {name} …"):
                    views[name] += page_views(base, cookie, args.requests)
                with console.status(f"round {r + 1}: payments at 100/s, {name} …"):
                    result = asyncio.run(
                        Simulator(base, payers, seed=r * 10 + len(name)).run(100, int(100 * args.seconds))
                    )
                pays[name] += result.latencies
                errors[name] += len(result.errors)
    finally:
        for proc in (real, baseline):
            proc.terminate()
            proc.wait(30)

    table = Table(title=f"what logins cost, {args.rounds} rounds alternating, one uvicorn process each")
    for col in ("app", "GET / p50 ms", "GET / p99 ms", "payment p50 ms", "payment p99 ms", "payments", "errors"):
        table.add_column(col, justify="left" if col == "app" else "right")
    for name in apps:
        table.add_row(name, f"{pct(views[name], 50):.1f}", f"{pct(views[name], 99):.1f}", f"{pct(pays[name], 50):.1f}",
                      f"{pct(pays[name], 99):.1f}", str(len(pays[name])), str(errors[name]))  # fmt: skip
    console.print(table)
    added = pct(views["with logins"], 50) - pct(views["baseline (no session check)"], 50)
    console.print(f"the session check adds {added:.2f} ms at the median of an authenticated page view")
    console.print(
        f"payment callback p99 at 100/s with logins: {pct(pays['with logins'], 99):.0f} ms (target <= 200 ms)"
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
