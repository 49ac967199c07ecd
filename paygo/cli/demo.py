"""``paygo demo``: the whole platform on the local stack, with simulated units and payments, until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import time
from typing import Annotated

import typer
from rich.live import Live

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
    try:
        if orchestration.prepare_database(settings, units):
            console.print(f"[green]seeded[/] a demo company with {units} customers and units")
            with console.status(f"writing {orchestration.HISTORY_DAYS} days of history …"):
                result, truth = orchestration.write_history(settings, units)
            console.print(f"[green]history[/]: {result.readings:,} readings and {result.payments:,} payments over "
                          f"{orchestration.HISTORY_DAYS} days (scenarios and onsets: {truth})")  # fmt: skip
        orchestration.provision_units(settings)
        size = orchestration.snapshot_kpis(settings)
        console.print(f"[green]KPI snapshot[/]: {size} units in the portfolio (page: /kpi)")
        children.spawn("ingest", ["ingest", "run", "--worker-id", "demo-0"])
        children.spawn("api", ["api", "run"])
        sim_args = ["sim", "run", "--units", str(units), "--speed", str(speed), "--platform-pay"]
        children.spawn("sim", orchestration.with_metrics_units(settings, children, sim_args, units))
        children.spawn("delivery", ["delivery", "run"])
        # Customers paying by M-Pesa now and then (with the odd duplicate and typo) once the app is up.
        children.spawn("payments", ["payments", "simulate", "--rate", "0.5", "--count", "100000",
                                    "--seed", str(int(time.time()))])  # fmt: skip
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
