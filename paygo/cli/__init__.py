"""The ``paygo`` command: every command group, assembled (each group is a module of this package;
``paygo kpi`` is the KPI package's own)."""

from __future__ import annotations

import sys

import typer

from backoffice.config import SettingsError
from devtools.process import StackError
from kpi.cli import app as kpi_app
from paygo.cli import backup, db, payments, secrets, services, sim, stack, tls, users
from paygo.cli.chaos import chaos
from paygo.cli.common import err_console
from paygo.cli.demo import demo

app = typer.Typer(
    help="PAYGO platform: device telemetry, back office, KPIs and a unit simulator.\n\n"
    "Start with 'paygo demo' to see the whole path run on the local stack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(db.app, name="db")
app.add_typer(services.ingest_app, name="ingest")
app.add_typer(services.api_app, name="api")
app.add_typer(sim.app, name="sim")
app.add_typer(kpi_app, name="kpi")
app.add_typer(db.ledger_app, name="ledger")
app.add_typer(services.delivery_app, name="delivery")
app.add_typer(payments.app, name="payments")
app.add_typer(payments.devices_app, name="devices")
app.add_typer(services.worker_app, name="worker")
app.add_typer(services.beat_app, name="beat")
app.add_typer(services.metrics_app, name="metrics")
app.add_typer(users.app, name="users")
app.add_typer(secrets.app, name="secrets")
app.add_typer(backup.app, name="backup")
app.add_typer(tls.app, name="tls")
app.command()(demo)
app.command()(chaos)


def main() -> None:
    try:
        app()
    except (SettingsError, StackError) as err:
        err_console.print(f"[red]error:[/] {err}")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
