"""``paygo stack``: the project-owned local servers (PostgreSQL, Mosquitto, Redis) under .paygo/."""

from __future__ import annotations

import typer
from rich.table import Table

from devtools.stack import Stack
from paygo.cli.common import console, settings_or_exit, setup_logging

app = typer.Typer(
    help="The project-owned local servers (PostgreSQL, Mosquitto, Redis) under .paygo/.", no_args_is_help=True
)


def _status_table(stack: Stack) -> Table:
    table = Table(title="local stack")
    for col in ("server", "port", "state", "pid", "setting"):
        table.add_column(col)
    for s in stack.status():
        colour = {"running": "green", "stopped": "dim", "port taken": "red"}[s.state]
        table.add_row(s.name, str(s.port), f"[{colour}]{s.state}[/]", str(s.pid or ""), s.setting)
    return table


@app.command("up")
def stack_up() -> None:
    """Start PostgreSQL, Mosquitto and Redis (nginx too with PAYGO_TLS=1), installing what is missing; idempotent."""
    settings = settings_or_exit()
    setup_logging(settings)
    stack = Stack(settings)
    started = stack.up()
    console.print(f"started: {', '.join(started)}" if started else "already running")
    console.print(_status_table(stack))


@app.command("down")
def stack_down() -> None:
    """Stop the local servers; leaves no process behind."""
    stack = Stack(settings_or_exit())
    stopped = stack.down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command("status")
def stack_status() -> None:
    """Show which local servers run, on which port, and the setting that changes the port."""
    console.print(_status_table(Stack(settings_or_exit())))
