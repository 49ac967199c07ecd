"""The ``paygo`` command (composition root): wires the packages together for the operator."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from backoffice.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from firmware_sim.unit import UnitSpec
from backoffice.stack import Stack, StackError
from kpi.cli import app as kpi_app

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    help="PAYGO platform: device telemetry, back office, KPIs and a unit simulator.\n\n"
    "Start with 'paygo demo' to see the whole path run on the local stack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(
    help="The project-owned local servers (PostgreSQL, Mosquitto, Redis) under .paygo/.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema and data.", no_args_is_help=True)
ingest_app = typer.Typer(help="Telemetry ingestion workers.", no_args_is_help=True)
api_app = typer.Typer(help="The back-office web application (API and call-centre pages).", no_args_is_help=True)
sim_app = typer.Typer(help="Simulated units (firmware_sim).", no_args_is_help=True)
ledger_app = typer.Typer(help="The ledger of expected and received payments.", no_args_is_help=True)
payments_app = typer.Typer(help="Mobile-money payments.", no_args_is_help=True)
devices_app = typer.Typer(help="Device credentials on the MQTT broker.", no_args_is_help=True)
worker_app = typer.Typer(help="Celery workers for background jobs (KPI snapshots, MoMo polling).", no_args_is_help=True)
beat_app = typer.Typer(help="The Celery beat scheduler (backoffice/schedule.py).", no_args_is_help=True)
delivery_app = typer.Typer(help="Token delivery: SMS and unit commands from the outbox.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")
app.add_typer(api_app, name="api")
app.add_typer(sim_app, name="sim")
app.add_typer(kpi_app, name="kpi")
app.add_typer(ledger_app, name="ledger")
app.add_typer(delivery_app, name="delivery")
app.add_typer(payments_app, name="payments")
app.add_typer(devices_app, name="devices")
app.add_typer(worker_app, name="worker")
app.add_typer(beat_app, name="beat")


def _settings() -> Settings:
    return load_settings()


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


# --------------------------------------------------------------------------- stack


def _status_table(stack: Stack) -> Table:
    table = Table(title="local stack")
    for col in ("server", "port", "state", "pid", "setting"):
        table.add_column(col)
    for s in stack.status():
        colour = {"running": "green", "stopped": "dim", "port taken": "red"}[s.state]
        table.add_row(s.name, str(s.port), f"[{colour}]{s.state}[/]", str(s.pid or ""), s.setting)
    return table


@stack_app.command("up")
def stack_up() -> None:
    """Start PostgreSQL, Mosquitto and Redis (installing them with apt-get if missing); idempotent."""
    settings = _settings()
    _setup_logging(settings)
    stack = Stack(settings)
    started = stack.up()
    console.print(f"started: {', '.join(started)}" if started else "already running")
    console.print(_status_table(stack))


@stack_app.command("down")
def stack_down() -> None:
    """Stop the local servers; leaves no process behind."""
    stack = Stack(_settings())
    stopped = stack.down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack_app.command("status")
def stack_status() -> None:
    """Show which local servers run, on which port, and the setting that changes the port."""
    console.print(_status_table(Stack(_settings())))


# --------------------------------------------------------------------------- db


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations (safe to re-run)."""
    from backoffice.db import connect
    from backoffice.migrate import migrate

    settings = _settings()
    _setup_logging(settings)
    with connect(settings, "migrate", autocommit=True) as conn:
        applied = migrate(conn)
    console.print(f"applied {', '.join(applied)}" if applied else "schema is up to date")


@db_app.command("seed-demo")
def db_seed_demo(customers: Annotated[int, typer.Option(help="customers, each with a unit")] = 50) -> None:
    """Seed the demo company (products, customers, units, contracts) into an empty database."""
    from backoffice import demo_data
    from backoffice.db import connect

    settings = _settings()
    with connect(settings, "seed") as conn:
        created = demo_data.seed(conn, settings.secret_key, customers)
        conn.commit()
    console.print(f"seeded {created} customers with units" if created else "database already has products: left as is")


@ledger_app.command("export")
def ledger_export(
    out: Annotated[Path, typer.Option(help="directory for ledger.csv and products.csv", file_okay=False)],
    as_of: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD: received rows up to this date (the schedule is always whole)")
    ] = None,
) -> None:
    """Write the ledger and products table in the KPI engine's format (kpi/SPEC.md §1), for
    `paygo kpi compute`, auditors and investors."""
    from datetime import date

    from backoffice.db import connect
    from backoffice.ledger.export import export

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter(f"{as_of!r} is not a date (YYYY-MM-DD)", param_hint="--as-of") from None
    with connect(_settings(), "export") as conn:
        ledger, products = export(conn, out, day)
    rows = sum(1 for _ in ledger.open("rb")) - 1
    console.print(f"wrote {rows:,} ledger rows to {ledger} and the products to {products}")


# --------------------------------------------------------------------------- ingest / api / sim


@ingest_app.command("run")
def ingest_run(
    worker_id: Annotated[
        str,
        typer.Option(
            help="stable id: the broker keeps this worker's session and "
            "queue under it, so restart a worker with the same id"
        ),
    ] = "",
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port (0: none)")] = 0,
    batch_size: Annotated[int, typer.Option(help="messages per transaction at most")] = 5000,
    flush_ms: Annotated[int, typer.Option(help="flush a partial batch after this long")] = 200,
) -> None:
    """Run one ingest worker: MQTT shared subscription in, COPY into PostgreSQL, ack after commit."""
    from ingest.main import default_worker_id, run_worker

    settings = _settings()
    _setup_logging(settings)
    run_worker(settings, worker_id or default_worker_id(), metrics_port or None, batch_size, flush_ms / 1000)


@ingest_app.command("device-api")
def ingest_device_api(port: Annotated[int, typer.Option(help="port (default PAYGO_DEVICE_API_PORT)")] = 0) -> None:
    """Serve OpenPAYGO Metrics (POST /dd) for units that report over HTTP, on 127.0.0.1."""
    import uvicorn

    from ingest.device_api import create_device_app

    settings = _settings()
    _setup_logging(settings)
    uvicorn.run(create_device_app(settings), host="127.0.0.1", port=port or settings.device_api_port,
                log_level="warning")  # fmt: skip


@api_app.command("run")
def api_run(
    port: Annotated[int, typer.Option(help="port (default PAYGO_API_PORT)")] = 0,
    workers: Annotated[int, typer.Option(help="server processes (one per core is a good start)")] = 1,
) -> None:
    """Serve the back-office API, the payment callbacks and the call-centre pages on 127.0.0.1."""
    import uvicorn

    settings = _settings()
    _setup_logging(settings)
    uvicorn.run("backoffice.main:create_app", factory=True, host="127.0.0.1", port=port or settings.api_port,
                workers=workers, log_level="warning")  # fmt: skip


@payments_app.command("simulate")
def payments_simulate(
    rate: Annotated[float, typer.Option(help="payments started per second")] = 5,
    count: Annotated[int, typer.Option(help="payments to send")] = 100,
    url: Annotated[str, typer.Option(help="the platform (default: the local web app)")] = "",
    duplicates: Annotated[float, typer.Option(help="share of confirmations sent twice")] = 0.05,
    typos: Annotated[float, typer.Option(help="share with a mistyped account number")] = 0.03,
    late: Annotated[float, typer.Option(help="share whose confirmation comes late")] = 0.05,
    reversals: Annotated[float, typer.Option(help="share reversed afterwards (needs --webhook-provider)")] = 0.0,
    momo: Annotated[float, typer.Option(help="share sent as MTN MoMo callbacks")] = 0.0,
    webhook_provider: Annotated[
        str, typer.Option(help="provider name in PAYGO_WEBHOOK_SECRETS used to send reversals")
    ] = "",
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
) -> None:
    """Send realistic M-Pesa (and MoMo) callbacks for the database's active accounts, with
    duplicates, typos, late confirmations and reversals, and report the answer times."""
    from backoffice.db import connect
    from backoffice.money import to_decimal
    from backoffice.payments import repository
    from backoffice.payments.simulator import Faults, Payer, Simulator

    settings = _settings()
    with connect(settings, "simulator") as conn:
        accounts = repository.active_accounts(conn)
    if not accounts:
        err_console.print("[red]no active contracts[/]: seed some with 'paygo db seed-demo'")
        raise typer.Exit(1)
    payers = [Payer(a, str(to_decimal(amount, cur))) for a, cur, amount in accounts]
    faults = Faults(duplicates, typos, late, reversals, momo)
    secret = settings.webhook_secrets.get(webhook_provider) if webhook_provider else None
    sim = Simulator(url or f"http://127.0.0.1:{settings.api_port}", payers,
                    settings.mpesa_shortcodes.split(",")[0].strip(), faults, webhook_provider or None, secret,
                    seed=seed)  # fmt: skip
    from rich.progress import Progress

    with Progress(console=err_console) as progress:
        task = progress.add_task("payments", total=count)
        result = asyncio.run(sim.run(rate, count, lambda n: progress.update(task, completed=n)))
    p50, p99 = result.percentile(50), result.percentile(99)
    console.print(f"sent {result.sent} payments in {result.elapsed:.1f} s: {result.by_kind}")
    if p50 is not None and p99 is not None:
        console.print(f"confirmation answered in p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    if result.errors:
        err_console.print(f"[red]{len(result.errors)} errors[/], first: {result.errors[0]}")
        raise typer.Exit(1)


@payments_app.command("import-statement")
def payments_import_statement(
    statement: Annotated[Path, typer.Argument(help="the provider's statement CSV", exists=True, dir_okay=False)],
    provider: Annotated[str, typer.Option(help="whose statement: mpesa, momo or a webhook provider")],
    actor: Annotated[str, typer.Option(help="who in finance runs the reconciliation (audit trail)")],
) -> None:
    """Reconcile a provider statement: create the payments that never arrived by callback and list
    every difference (amount, account, rejected callbacks, callbacks missing from the statement).
    Bad lines are reported by number and skipped; the rest is kept. Exits 1 if anything differs."""
    from backoffice.db import connect
    from backoffice.payments.statement import import_statement

    settings = _settings()
    with connect(settings, "reconcile") as conn, conn.transaction():
        report = import_statement(conn, provider, statement, actor, settings.secret_key)
    console.print(f"{report.rows} statement rows: {report.matched} matched, {len(report.created)} created")
    for title, items in (
        ("created", report.created),
        ("differences", report.mismatches),
        ("not on the statement", report.missing_from_statement),
        ("bad lines", report.errors),
    ):
        if items:
            console.print(f"[bold]{title}[/] ({len(items)}):")
            for item in items:
                console.print(f"  {item}", highlight=False)
    if report.mismatches or report.missing_from_statement or report.errors:
        raise typer.Exit(1)


@devices_app.command("provision")
def devices_provision(
    serial: Annotated[list[str] | None, typer.Option("--serial", help="only these units (repeatable)")] = None,
) -> None:
    """Give units without MQTT credentials their own (username = serial), rewrite the broker's password
    file and make the broker re-read it; connected units stay connected."""
    from backoffice.db import connect
    from backoffice.devices import service
    from backoffice.stack import Mosquitto

    settings = _settings()
    broker = Mosquitto(settings)
    with connect(settings, "devices") as conn, conn.transaction():
        issued = service.provision(conn, settings.secret_key, serial)
        total = service.write_password_file(conn, broker.password_file)
    broker.reload()
    console.print(f"provisioned {len(issued)} unit(s); the broker now knows {total} unit(s)")


@worker_app.command("run")
def worker_run(loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO") -> None:
    """Run a Celery worker, one task at a time; Ctrl-C stops it. Run more workers for more parallelism.

    A worker killed during a task leaves no partial result (every task is one transaction), and the
    task is handed out again after PAYGO_TASK_VISIBILITY_TIMEOUT seconds.
    """
    from backoffice.worker import app as celery

    celery.worker_main(["worker", "--pool", "solo", "--loglevel", loglevel, "--hostname", "paygo@%h"])


@beat_app.command("run")
def beat_run(loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO") -> None:
    """Send the tasks of backoffice/schedule.py on time. Run exactly one beat."""
    from backoffice.worker import app as celery

    state = celery.conf.paygo_settings.home / "celerybeat-schedule"
    state.parent.mkdir(parents=True, exist_ok=True)
    celery.start(["beat", "--loglevel", loglevel, "--schedule", str(state)])


@delivery_app.command("run")
def delivery_run(
    interval: Annotated[float, typer.Option(help="seconds between outbox polls")] = 1.0,
    retry_after: Annotated[float, typer.Option(help="seconds before an unacknowledged unit command is resent")] = 60,
) -> None:
    """Send tokens waiting in the outbox (SMS through the gateway, commands to the units over MQTT),
    record the units' acknowledgements and retry the rest; Ctrl-C stops it."""
    import threading

    from backoffice.delivery.main import run

    settings = _settings()
    _setup_logging(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run(settings, stop, interval, retry_after)
    except KeyboardInterrupt:
        stop.set()


@sim_app.command("run")
def sim_run(
    units: Annotated[int, typer.Option(help="how many units to simulate (installed units from the database)")] = 50,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second (1440 = a day a minute)")] = 1440,
    start_days_ago: Annotated[
        float,
        typer.Option(help="start the simulated clock this many days back; it runs at real speed once it catches up"),
    ] = 30,
    duration: Annotated[float, typer.Option(help="stop after this many real seconds (0: until Ctrl-C)")] = 0,
    device_login: Annotated[
        bool, typer.Option(help="each unit logs in with its own credentials on the device listener")
    ] = True,
    scenario_mix: Annotated[
        str,
        typer.Option(
            help="scenario weights, e.g. healthy=70,panel_covered=5 (see 'paygo sim scenarios'); 'healthy' for none"
        ),  # fmt: skip
    ] = "healthy",
    truth: Annotated[
        Path | None, typer.Option(help="write each unit's true scenario and onset time to this CSV file")
    ] = None,
    self_pay: Annotated[
        bool,
        typer.Option(
            "--self-pay/--platform-pay",
            help="customers pay by themselves (credit typed in), or credit "
            "comes only from the platform's token commands (as in the demo)",
        ),  # fmt: skip
    ] = True,
    connections: Annotated[
        int, typer.Option(help="load mode: send for all units over this many shared connections (0: one per unit)")
    ] = 0,
    synthetic: Annotated[
        bool, typer.Option(help="invent the units (serials SIM000001...) instead of reading them from the database")
    ] = False,
    seed: Annotated[int, typer.Option(help="random seed of the physics, habits and scenarios")] = 0,
) -> None:
    """Simulate units: each reports every 20 simulated minutes over MQTT, as real firmware does.

    Realistic mode (the default) opens one connection per unit; load mode (--connections N) shares
    a few connections on the services listener. With --scenario-mix some units get a fault
    (a covered panel, a failing battery, a GSM outage, ...) at a random time; --truth records
    which and when, to score alerts against.
    """
    import numpy as np

    from firmware_sim import scenarios
    from firmware_sim.clock import SimClock
    from firmware_sim.fleet import FleetConfig, FleetStats, run_fleet

    settings = _settings()
    _setup_logging(settings)
    weights = _scenario_mix(scenario_mix)
    if connections and device_login and not synthetic:
        device_login = False  # shared connections publish for many units: only the services listener allows it
    specs, passwords, keys = _sim_units(settings, units, synthetic)
    clock = SimClock(datetime.now(UTC) - timedelta(days=start_days_ago), speed)
    cfg = FleetConfig(settings.mqtt_host, settings.mqtt_port, topic_root=settings.mqtt_topic_root, keys=keys,
                      self_pay=self_pay, connections=connections, seed=seed)  # fmt: skip
    if device_login and not synthetic:
        missing = [s for s, p in passwords.items() if p is None]
        if missing:
            raise typer.BadParameter(f"{len(missing)} unit(s) have no MQTT credentials (e.g. {missing[0]}); "
                                     "run 'paygo devices provision' first, or use --no-device-login")  # fmt: skip
        credentials = {s: p for s, p in passwords.items() if p is not None}
        cfg = dataclasses.replace(cfg, port=settings.device_mqtt_port, credentials=credentials)
    # Scenario onsets fall inside the simulated span up to now (or one real-speed day after it).
    end = max(datetime.now(UTC), clock.now() + timedelta(days=1))
    assignment = scenarios.assign(len(specs), weights, clock.now(), end, np.random.default_rng(seed))
    if truth:
        scenarios.write_truth(truth, [s.serial for s in specs], assignment)
        console.print(f"ground truth of {len(specs)} units written to {truth}")
    stats = FleetStats()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration:
            loop.call_later(duration, stop.set)
        fleet = asyncio.create_task(run_fleet(specs, clock, cfg, stop, stats, assignment=assignment), name="fleet")
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while not fleet.done():
                live.update(
                    f"simulated {clock.now():%Y-%m-%d %H:%M} UTC · units {stats.units} · online {stats.online} · "
                    f"readings sent {stats.readings_sent} · buffered {stats.buffered} · dropped {stats.dropped} · "
                    f"locked {stats.locked} · tokens {stats.tokens_accepted}"
                )
                await asyncio.sleep(0.5)
        await fleet

    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a socket per unit in realistic mode
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, len(specs) + 256)), hard))
    started = time.monotonic()
    asyncio.run(main())
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    console.print(
        f"ran {time.monotonic() - started:.1f} s: units {stats.units}, most online {stats.most_online}, "
        f"readings sent {stats.readings_sent}, messages {stats.messages_sent}, dropped {stats.dropped}, "
        f"cpu {cpu.ru_utime + cpu.ru_stime:.1f} s, largest lag of the physics {stats.max_lag_s:.0f} simulated s"
    )


def _scenario_mix(text: str) -> dict[str, float]:
    from firmware_sim import scenarios

    try:
        return scenarios.parse_mix(text)
    except scenarios.MixError as err:
        raise typer.BadParameter(str(err), param_hint="--scenario-mix") from None


def _sim_units(
    settings: Settings, units: int, synthetic: bool
) -> tuple[list[UnitSpec], dict[str, str | None], dict[str, tuple[str, int]]]:
    from backoffice import crypto
    from backoffice.db import connect
    from backoffice.devices import service as devices
    from backoffice.registry.repository import installed_units, unit_keys
    from firmware_sim.unit import UnitSpec

    if synthetic:
        from firmware_sim.backfill import synthetic_specs

        return synthetic_specs(units), {}, {}
    with connect(settings, "sim") as conn:
        rows = installed_units(conn, units)
        passwords = {r.serial: devices.password(conn, settings.secret_key, r.serial) for r in rows}
        keys = {
            s: (crypto.decrypt(settings.secret_key, k), c)
            for s, (k, c) in unit_keys(conn, [r.serial for r in rows]).items()
        }
    if not rows:
        raise typer.BadParameter("no installed units in the database; run 'paygo db seed-demo' first, or --synthetic")
    specs = [UnitSpec(r.serial, r.latitude, r.longitude, r.panel_wp, r.battery_ah, r.battery_chemistry) for r in rows]
    return specs, passwords, keys


@sim_app.command("backfill")
def sim_backfill(
    units: Annotated[int, typer.Option(help="units to give a history (more demo customers are made if needed)")] = 50,
    days: Annotated[int, typer.Option(help="days of history, ending today at 00:00 UTC")] = 90,
    scenario_mix: Annotated[
        str, typer.Option(help="scenario weights, e.g. healthy=70,panel_covered=5 (see 'paygo sim scenarios')")
    ] = "healthy",
    truth: Annotated[
        Path | None, typer.Option(help="write each unit's true scenario and onset time to this CSV file")
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed of the physics, habits, payments and scenarios")] = 0,
    end: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="the history ends at 00:00 UTC of this day")
    ] = None,
) -> None:
    """Write months of history straight into the database: readings, daily rollups and payments.

    The same physics and firmware as 'paygo sim run'; payments go through the money loop (ledger,
    tokens), so charts, alerts and KPIs have a consistent past. Each simulated day is committed on
    its own; a unit that already has readings in the window is refused rather than doubled.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from backoffice.db import connect
    from backoffice.migrate import migrate
    from firmware_sim import scenarios
    from firmware_sim.backfill import BackfillError, backfill

    settings = _settings()
    _setup_logging(settings)
    weights = _scenario_mix(scenario_mix)
    with connect(settings, "backfill", autocommit=True) as conn:
        migrate(conn)
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeRemainingColumn()]  # fmt: skip
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("simulated days", total=days, rate="")
            t0 = time.perf_counter()

            def show(day: int, readings: int) -> None:
                rate = readings / max(time.perf_counter() - t0, 1e-9)
                bar.update(task, completed=day, rate=f"{readings:,} readings · {rate:,.0f}/s")

            try:
                result, sim = backfill(conn, settings.secret_key, units, days, seed=seed, mix=weights, progress=show,
                                       end=end.replace(tzinfo=UTC) if end else None,
                                       connect=lambda: connect(settings, "backfill", autocommit=True))  # fmt: skip
            except BackfillError as err:
                err_console.print(str(err))
                raise typer.Exit(1) from None
    if truth:
        scenarios.write_truth(truth, sim.serials, sim.assignment)
        console.print(f"ground truth of {result.units} units written to {truth}")
    console.print(
        f"{result.units} units × {result.days} days: {result.readings:,} readings, {result.payments:,} payments, "
        f"{result.tokens:,} tokens in {result.seconds:.1f} s ({result.rate:,.0f} readings/s)"
    )


@sim_app.command("scenarios")
def sim_scenarios() -> None:
    """List the scenarios that --scenario-mix can give units, and the default mix."""
    from firmware_sim.scenarios import DEFAULT_MIX, SCENARIOS

    for name, what in SCENARIOS.items():
        console.print(f"[bold]{name}[/bold]: {what}")
    console.print(f"\ndefault mix for a realistic fleet: {DEFAULT_MIX}")


# --------------------------------------------------------------------------- demo


def _demo_history(settings: Settings, units: int) -> None:
    """Two months of history before the live simulation's first day (which starts 30 days back), with
    the default scenario mix, so charts, alerts and KPIs have a past; the truth goes to a file."""
    from backoffice.db import connect
    from firmware_sim import scenarios
    from firmware_sim.backfill import backfill

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
    with console.status("writing 60 days of history …"), connect(settings, "backfill", autocommit=True) as conn:
        mix = scenarios.parse_mix(scenarios.DEFAULT_MIX)
        result, sim = backfill(conn, settings.secret_key, units, 60, end=end, mix=mix,
                               connect=lambda: connect(settings, "backfill", autocommit=True))  # fmt: skip
    truth = settings.home_dir / "demo-truth.csv"
    scenarios.write_truth(truth, sim.serials, sim.assignment)
    console.print(f"[green]history[/]: {result.readings:,} readings and {result.payments:,} payments over 60 days "
                  f"(scenarios and onsets: {truth})")  # fmt: skip


def _spawn(name: str, args: list[str], logs: Path) -> subprocess.Popen[bytes]:
    out = (logs / f"{name}.log").open("ab")
    # A session of its own: Ctrl-C reaches only the demo, which then stops children in order.
    return subprocess.Popen(
        [sys.executable, "-m", "backoffice.cli", *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop_children(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, p in children:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for name, p in children:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            err_console.print(f"{name} did not stop in 20 s; killing it")
            p.kill()
            p.wait()


@app.command()
def demo(
    units: Annotated[int, typer.Option(help="simulated units (and demo customers)")] = 50,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 1440,
    duration: Annotated[float, typer.Option(help="stop by itself after this many seconds (0: until Ctrl-C)")] = 0,
) -> None:
    """The walking skeleton: stack up, migrate, seed, then ingest + API + simulated units, until Ctrl-C."""
    from backoffice import demo_data
    from backoffice.db import connect
    from backoffice.migrate import migrate
    from backoffice.registry.repository import counts

    settings = _settings()
    logging.basicConfig(level=logging.WARNING)
    stack = Stack(settings)
    with console.status("starting the local stack (first run installs and initialises servers)…"):
        started = stack.up()
    console.print(f"[green]stack up[/] ({', '.join(started) or 'already running'})")
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def _interrupt(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with connect(settings, "demo", autocommit=True) as conn:
            migrate(conn)
        with connect(settings, "demo") as conn:
            seeded = demo_data.seed(conn, settings.secret_key, units)
            conn.commit()
        if seeded:
            console.print(f"[green]seeded[/] a demo company with {units} customers and units")
            _demo_history(settings, units)
        with connect(settings, "devices") as conn, conn.transaction():
            from backoffice.devices import service as devices
            from backoffice.stack import Mosquitto

            devices.provision(conn, settings.secret_key)  # units log in as themselves
            devices.write_password_file(conn, Mosquitto(settings).password_file)
        Mosquitto(settings).reload()
        with connect(settings, "kpi") as conn, conn.transaction():
            from kpi.service import take_snapshots

            kpis = take_snapshots(conn, [datetime.now(UTC).date() - timedelta(days=1)])[0]["kpis"]
        console.print(f"[green]KPI snapshot[/]: {kpis['portfolio_size']} units in the portfolio (page: /kpi)")
        logs = settings.home_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        children.append(("ingest", _spawn("ingest", ["ingest", "run", "--worker-id", "demo-0"], logs)))
        children.append(("api", _spawn("api", ["api", "run"], logs)))
        sim = ["sim", "run", "--units", str(units), "--speed", str(speed), "--platform-pay"]
        children.append(("sim", _spawn("sim", sim, logs)))
        children.append(("delivery", _spawn("delivery", ["delivery", "run"], logs)))
        # Customers paying by M-Pesa now and then (with the odd duplicate and typo) once the app is up.
        paying = ["payments", "simulate", "--rate", "0.5", "--count", "100000", "--seed", str(int(time.time()))]
        children.append(("payments", _spawn("payments", paying, logs)))
        url = f"http://127.0.0.1:{settings.api_port}/"
        console.print(f"call-centre pages: [bold]{url}[/]   API: {url}api/units   logs: {logs}")
        console.print("Ctrl-C stops everything the demo started.")
        t0 = time.monotonic()
        with connect(settings, "demo", autocommit=True) as conn, Live(console=console, refresh_per_second=1) as live:
            while not stopping and (not duration or time.monotonic() - t0 < duration):
                c = counts(conn)
                dead = [n for n, p in children if p.poll() is not None]
                live.update(
                    f"[{time.monotonic() - t0:5.0f} s] telemetry rows {c['telemetry']:>8} · rejected {c['rejects']} · "
                    f"units {c['units']} · ledger rows {c['ledger_entries']}"
                    + (f" · [red]stopped: {', '.join(dead)} (see {logs})[/]" if dead else "")
                )
                for _ in range(10):
                    if stopping:
                        break
                    time.sleep(0.2)
    finally:
        console.print("stopping the demo…")
        # Simulated units first, then the worker flushes and acknowledges, then the API.
        _stop_children(children)
        stack.down(only=started)
        console.print("[green]stopped[/]; 'paygo stack status' shows what is still running")


def main() -> None:
    try:
        app()
    except (SettingsError, StackError) as err:
        err_console.print(f"[red]error:[/] {err}")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
