"""``paygo sim``: simulated units, live over MQTT or as a history written straight into the database."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live

from paygo.cli.common import console, err_console, settings_or_exit, setup_logging

app = typer.Typer(help="Simulated units (firmware_sim).", no_args_is_help=True)


@app.command("run")
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
    metrics_units: Annotated[
        int, typer.Option(help="of the units, this many report with OpenPAYGO Metrics over HTTP (the device API)")
    ] = 0,
    metrics_auth: Annotated[str, typer.Option(help="the Metrics units' auth method: sa, ta, ca, da or ra")] = "ra",
    metrics_condensed: Annotated[
        bool, typer.Option("--metrics-condensed/--metrics-simple", help="condensed or simple Metrics requests")
    ] = True,
    metrics_cbor: Annotated[bool, typer.Option("--metrics-cbor/--metrics-json", help="CBOR or JSON bodies")] = False,
    resend_unrouted: Annotated[
        bool,
        typer.Option(
            "--resend-unrouted/--drop-unrouted",
            help="keep a report the broker answers 'no matching subscribers' (MQTT 5) and send it again; "
            "--drop-unrouted: firmware that takes any PUBACK as delivered (MQTT 3.1.1), a baseline",
        ),
    ] = True,
) -> None:
    """Simulate units: each reports every 20 simulated minutes over MQTT, as real firmware does.

    Realistic mode (the default) opens one connection per unit; load mode (--connections N) shares
    a few connections on the services listener. With --scenario-mix some units get a fault
    (a covered panel, a failing battery, a GSM outage, ...) at a random time; --truth records
    which and when, to score alerts against.
    """
    import dataclasses
    import resource

    from firmware_sim import scenarios
    from firmware_sim.fleet import FleetStats
    from paygo import simulation

    settings = settings_or_exit()
    setup_logging(settings)
    try:
        fleet = simulation.prepare(settings, units=units, speed=speed, start_days_ago=start_days_ago,
                                   device_login=device_login, weights=_scenario_mix(scenario_mix), self_pay=self_pay,
                                   connections=connections, synthetic=synthetic, seed=seed)  # fmt: skip
        fleet = simulation.with_metrics_units(settings, fleet, metrics_units, metrics_auth, metrics_condensed,
                                              metrics_cbor)  # fmt: skip
        fleet.config = dataclasses.replace(fleet.config, resend_unrouted=resend_unrouted)
    except (simulation.FleetSetupError, ValueError) as err:
        raise typer.BadParameter(str(err)) from None
    if truth:
        scenarios.write_truth(truth, [s.serial for s in fleet.specs], fleet.assignment)
        console.print(f"ground truth of {len(fleet.specs)} units written to {truth}")
    stats = FleetStats()
    started = time.monotonic()
    with Live(console=console, refresh_per_second=2, transient=False) as live:

        def show() -> None:
            live.update(
                f"simulated {fleet.clock.now():%Y-%m-%d %H:%M} UTC · units {stats.units} · online {stats.online} · "
                f"readings sent {stats.readings_sent} · buffered {stats.buffered} · dropped {stats.dropped} · "
                f"locked {stats.locked} · tokens {stats.tokens_accepted}"
            )

        simulation.run(fleet, stats, duration, show)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    console.print(
        f"ran {time.monotonic() - started:.1f} s: units {stats.units}, most online {stats.most_online}, "
        f"readings sent {stats.readings_sent}, messages {stats.messages_sent}, dropped {stats.dropped}, "
        f"not taken {stats.not_taken} (no subscriber yet: kept and sent again), "
        f"cpu {cpu.ru_utime + cpu.ru_stime:.1f} s, largest lag of the physics {stats.max_lag_s:.0f} simulated s"
    )


def _scenario_mix(text: str) -> dict[str, float]:
    from firmware_sim import scenarios

    try:
        return scenarios.parse_mix(text)
    except scenarios.MixError as err:
        raise typer.BadParameter(str(err), param_hint="--scenario-mix") from None


@app.command("backfill")
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
    from paygo.backfill import BackfillError, backfill

    settings = settings_or_exit()
    setup_logging(settings)
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


@app.command("scenarios")
def sim_scenarios() -> None:
    """List the scenarios that --scenario-mix can give units, and the default mix."""
    from firmware_sim.scenarios import DEFAULT_MIX, SCENARIOS

    for name, what in SCENARIOS.items():
        console.print(f"[bold]{name}[/bold]: {what}")
    console.print(f"\ndefault mix for a realistic fleet: {DEFAULT_MIX}")
