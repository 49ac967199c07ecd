"""``paygo demo``: the whole platform on the local stack, with simulated units and payments, until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import time
from typing import Annotated

import typer
from rich.live import Live

from backoffice import clock
from paygo.cli.common import console, err_console, settings_or_exit


def demo(
    units: Annotated[int, typer.Option(help="simulated units (and demo customers)")] = 50,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 1440,
    duration: Annotated[float, typer.Option(help="stop by itself after this many seconds (0: until Ctrl-C)")] = 0,
) -> None:
    """The walking skeleton: stack up, migrate, seed, then ingest + API + simulated units, until Ctrl-C."""
    from backoffice.db import connect
    from backoffice.registry.repository import counts
    from devtools.stack import Stack
    from paygo import demo as orchestration

    settings = settings_or_exit()
    logging.basicConfig(level=logging.WARNING)
    stack = Stack(settings)
    with console.status("starting the local stack (first run installs and initialises servers)…"):
        started = stack.up()
    console.print(f"[green]stack up[/] ({', '.join(started) or 'already running'})")
    children = orchestration.Children(settings.home_dir / "logs")
    stopping = False

    def _interrupt(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    end = None  # the history's end, when this run wrote it
    try:
        if orchestration.prepare_database(settings, units):
            console.print(f"[green]seeded[/] a demo company with {units} customers and units")
            with console.status(f"writing the history up to now ({orchestration.HISTORY_DAYS} days of readings) …"):
                result, truth, end = orchestration.write_history(settings, units)
            console.print(f"[green]history[/] up to {end:%Y-%m-%d %H:%M} UTC: {result.earlier_payments:,} payments "
                          f"since the contracts' signing, then {result.readings:,} readings and {result.payments:,} "
                          f"payments over the last {orchestration.HISTORY_DAYS} days "
                          f"(scenarios and onsets: {truth})")  # fmt: skip
        orchestration.provision_units(settings)
        kpis = orchestration.snapshot_kpis(settings)
        par30, collected = kpis["par"]["30"] or 0, orchestration.collection_rate(settings) or 0
        console.print(f"[green]KPI snapshot[/] of today: {kpis['portfolio_size']} units in the portfolio, ARPU "
                      f"{kpis['arpu'] or 0:.2f}, PAR 30 {100 * par30:.1f} %, collection rate (30 days) "
                      f"{100 * collected:.0f} % (page: /kpi)")  # fmt: skip
        # The units resume from the history's end and catch up to now at --speed, then run on the
        # real clock: the clock of the payments below.
        start = orchestration.live_start(settings)
        days_ago = max((clock.utc_now() - start).total_seconds() / 86400, 0.0)
        children.spawn("ingest", ["ingest", "run", "--worker-id", "demo-0"])
        children.spawn("api", ["api", "run"])
        sim_args = ["sim", "run", "--units", str(units), "--speed", str(speed), "--platform-pay",
                    "--start-days-ago", f"{days_ago:.6f}"]  # fmt: skip
        children.spawn("sim", orchestration.with_metrics_units(settings, children, sim_args, units))
        children.spawn("delivery", ["delivery", "run"])
        # Customers paying by M-Pesa now and then (with the odd duplicate and typo) once the app is up,
        # each about once an hour: faster than life (weekly), so that the pages move while one watches.
        children.spawn("payments", ["payments", "simulate", "--rate", f"{units / 3600:.4f}", "--count", "100000",
                                    "--seed", str(int(clock.utc_now().timestamp()))])  # fmt: skip
        if end is not None:
            with console.status("evaluating the history's nights for fleet health …"):
                nights = orchestration.evaluate_history(settings, end)
            console.print(f"[green]fleet health[/] of the history's {nights} nights (page: /fleet-health)")
        url = f"http://127.0.0.1:{settings.api_port}/"
        console.print(f"call-centre pages: [bold]{url}[/]   API: {url}api/units   logs: {children.logs}")
        for name, password in orchestration.staff_logins(settings).items():
            console.print(f"  log in as [bold]{name}[/] with password [bold]{password}[/]", highlight=False)
        console.print("Ctrl-C stops everything the demo started.")
        t0 = time.monotonic()
        with connect(settings, "demo", autocommit=True) as conn, Live(console=console, refresh_per_second=1) as live:
            while not stopping and (not duration or time.monotonic() - t0 < duration):
                c = counts(conn)
                dead = children.dead()
                live.update(
                    f"[{time.monotonic() - t0:5.0f} s] telemetry rows {c['telemetry']:>8} · rejected {c['rejects']} · "
                    f"units {c['units']} · ledger rows {c['ledger_entries']}"
                    + (f" · [red]stopped: {', '.join(dead)} (see {children.logs})[/]" if dead else "")
                )
                for _ in range(10):
                    if stopping:
                        break
                    time.sleep(0.2)
    finally:
        console.print("stopping the demo…")
        # Simulated units first, then the worker flushes and acknowledges, then the API.
        for name in children.stop():
            err_console.print(f"{name} did not stop in 20 s; it was killed")
        stack.down(only=started)
        console.print("[green]stopped[/]; 'paygo stack status' shows what is still running")
