"""``paygo payments`` and ``paygo devices``: mobile-money tools and unit credentials on the broker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from paygo.cli.common import console, err_console, settings_or_exit

app = typer.Typer(help="Mobile-money payments.", no_args_is_help=True)
devices_app = typer.Typer(help="Device credentials on the MQTT broker.", no_args_is_help=True)


@app.command("simulate")
def payments_simulate(
    rate: Annotated[float, typer.Option(help="payments started per second")] = 5,
    count: Annotated[int, typer.Option(help="payments to send")] = 100,
    url: Annotated[str, typer.Option(help="the platform (default: the local web app)")] = "",
    duplicates: Annotated[float, typer.Option(help="share of confirmations sent twice")] = 0.05,
    typos: Annotated[float, typer.Option(help="share with a mistyped account number")] = 0.03,
    late: Annotated[float, typer.Option(help="share whose confirmation comes late")] = 0.05,
    reversals: Annotated[
        float, typer.Option(help="share paid through --webhook-provider and reversed by it afterwards")
    ] = 0.0,
    momo: Annotated[
        float, typer.Option(help="share sent as MTN MoMo callbacks the platform never requested (each refused)")
    ] = 0.0,
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
    from devtools.mobile_money import Faults, Payer, Simulator

    settings = settings_or_exit()
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


@app.command("import-statement")
def payments_import_statement(
    statement: Annotated[Path, typer.Argument(help="the provider's statement CSV (UTF-8)")],
    provider: Annotated[str, typer.Option(help="whose statement: mpesa, momo or a webhook provider")],
    actor: Annotated[str, typer.Option(help="who in finance runs the reconciliation (audit trail)")],
) -> None:
    """Reconcile a provider statement: create the payments that never arrived by callback and list
    every difference (amount, account, rejected callbacks, callbacks missing from the statement).
    The whole file is checked first: if any line is bad, each is named by file and line on standard
    error and nothing is imported. A created payment above its currency's ceiling is held for
    finance. Exits 1 if the file is refused or anything differs."""
    import getpass
    import sys

    from backoffice.audit.schemas import Actor
    from backoffice.db import connect
    from backoffice.payments.statement import StatementError, limits_of, read_statement, reconcile

    settings = settings_or_exit()
    try:
        lines = read_statement(statement, provider)
    except StatementError as err:
        # Plain lines (no wrapping, no markup) so that they can be grepped and pasted into a ticket.
        sys.stderr.write(f"statement refused ({len(err.errors)} problem(s)); nothing was imported:\n{err}\n")
        raise typer.Exit(1) from None
    limits = limits_of(settings)  # the ceilings of the payment doors; not their time window (history)
    # The operator's login on this machine goes into the audit trail beside the name given.
    who = Actor(f"{actor} (cli:{getpass.getuser()})")
    with connect(settings, "reconcile") as conn, conn.transaction():
        report = reconcile(conn, provider, lines, who, settings.secret_key, limits)
    console.print(f"{report.rows} statement rows: {report.matched} matched, {len(report.created)} created")
    for title, items in (
        ("created", report.created),
        ("differences", report.mismatches),
        ("not on the statement", report.missing_from_statement),
    ):
        if items:
            console.print(f"[bold]{title}[/] ({len(items)}):")
            for item in items:
                console.print(f"  {item}", highlight=False, markup=False)
    if report.mismatches or report.missing_from_statement:
        raise typer.Exit(1)


@devices_app.command("provision")
def devices_provision(
    serial: Annotated[list[str] | None, typer.Option("--serial", help="only these units (repeatable)")] = None,
) -> None:
    """Give units without MQTT credentials their own (username = serial), rewrite the broker's password
    file (PAYGO_BROKER_PASSWORD_FILE) and make the broker re-read it (PAYGO_BROKER_RELOAD_COMMAND, or a
    SIGHUP to the pid in PAYGO_BROKER_PID_FILE), and give the device listener's dynamic-security plugin
    the same logins, each unit with a role of its own topics; connected units stay connected."""
    from backoffice.db import connect
    from backoffice.devices import broker, service

    settings = settings_or_exit()
    with connect(settings, "devices") as conn, conn.transaction():
        issued = service.provision(conn, settings.secret_key, serial)
        total = service.write_password_file(conn, settings.device_password_file)
        logins = service.broker_logins(conn, settings.secret_key)
    try:
        done = broker.reload(settings)
        if settings.broker_dynamic_security:
            done += "; " + broker.sync(settings, logins, reset=issued)
    except broker.BrokerReloadError as err:
        err_console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from None
    console.print(f"provisioned {len(issued)} unit(s); the broker now knows {total} unit(s) ({done})")
