"""``paygo stack``: the project-owned local servers (PostgreSQL, Mosquitto, Redis) under .paygo/."""

from __future__ import annotations

import typer
from rich.table import Table

from devtools.ha.stack import HAStack
from devtools.stack import Stack
from paygo.cli.common import console, settings_or_exit, setup_logging

app = typer.Typer(
    help="The project-owned local servers (PostgreSQL, Mosquitto, Redis) under .paygo/.", no_args_is_help=True
)


def _status_table(stack: Stack | HAStack, title: str = "local stack") -> Table:
    table = Table(title=title)
    for col in ("server", "port", "state", "pid", "setting", "role"):
        table.add_column(col)
    for s in stack.status():
        colour = {"running": "green", "stopped": "dim", "port taken": "red"}[s.state]
        role = s.detail if s.state == "running" else ""
        table.add_row(s.name, str(s.port), f"[{colour}]{s.state}[/]", str(s.pid or ""), s.setting, role)
    return table


@app.command("up")
def stack_up(
    ha: bool = typer.Option(
        False, "--ha", help="The high-availability stack: etcd, 3 PostgreSQL under Patroni, pgBackRest, Redis Sentinel"
    ),
) -> None:
    """Start PostgreSQL, Mosquitto and Redis (nginx too with PAYGO_TLS=1), installing what is missing; idempotent."""
    settings = settings_or_exit()
    setup_logging(settings)
    stack: Stack | HAStack = HAStack(settings) if ha else Stack(settings)
    started = stack.up()
    console.print(f"started: {', '.join(started)}" if started else "already running")
    console.print(_status_table(stack, "HA stack" if ha else "local stack"))
    if isinstance(stack, HAStack):
        console.print(f"point the platform at it with: source {stack.env_file}")
        for k, v in stack.env().items():
            console.print(f"  {k}={v}", soft_wrap=True)


@app.command("down")
def stack_down(
    ha: bool = typer.Option(False, "--ha", help="Only the HA stack (Mosquitto included)"),
    wipe: bool = typer.Option(
        False, "--wipe", help="With --ha: also delete the HA stack's data, backups and configurations (.paygo/ha)"
    ),
) -> None:
    """Stop the local servers (the plain and the HA stack); leaves no process behind."""
    settings = settings_or_exit()
    if wipe and not ha:
        raise typer.BadParameter("--wipe deletes the HA stack's data and goes with --ha only", param_hint="--wipe")
    stack = HAStack(settings)
    if wipe:
        stack.wipe()
        console.print(f"stopped the HA stack and deleted {stack.dir}")
        return
    stopped = stack.down() + ([] if ha else Stack(settings).down())
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command("status")
def stack_status() -> None:
    """Show which local servers run, on which port, and the setting that changes the port."""
    settings = settings_or_exit()
    console.print(_status_table(Stack(settings)))
    ha = HAStack(settings)
    if ha.dir.exists():
        console.print(_status_table(ha, "HA stack"))
