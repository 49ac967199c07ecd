"""``paygo secrets``: which key the device secrets at rest are under, and their rotation to a new key.

A rotation: set the new key as PAYGO_SECRET_KEY and the old one in PAYGO_OLD_SECRET_KEYS for every
process, run ``paygo secrets rotate``, then remove the old key (``paygo secrets status`` shows none
left under it).
"""

from __future__ import annotations

import getpass

import typer
from rich.table import Table

from backoffice.audit.schemas import Actor
from paygo.cli.common import console, err_console, settings_or_exit

app = typer.Typer(help="Device secrets at rest: their keys and the rotation to a new key.", no_args_is_help=True)

LABELS = {"openpaygo_key_enc": "OpenPAYGO keys", "mqtt_password_enc": "MQTT passwords"}


@app.command("status")
def status() -> None:
    """How many device secrets are encrypted under which key id (current, old, legacy or not configured)."""
    from backoffice import crypto
    from backoffice.db import connect
    from backoffice.devices import service

    settings = settings_or_exit()
    with connect(settings, "secrets") as conn:
        counts = service.key_counts(conn, settings.secret_key)
    current, *old = (crypto.key_id(k) for k in crypto.configured_keys(settings.secret_key))
    console.print(f"current key id {current}" + (f"; old key ids {', '.join(old)}" if old else ""), soft_wrap=True)
    table = Table("secrets", "key id", "key", "count")
    for c in counts:
        table.add_row(LABELS.get(c.column, c.column), c.key_id, c.state, str(c.count))
    console.print(table)
    pending = sum(c.count for c in counts if c.state != "current")
    console.print(f"{pending} to rotate" if pending else "everything is under the current key")


@app.command("rotate")
def rotate() -> None:
    """Re-encrypt every device secret under the current key (PAYGO_SECRET_KEY), in one transaction.

    The keys they are under now must be configured (PAYGO_OLD_SECRET_KEYS). Safe to run again.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from backoffice import crypto
    from backoffice.db import connect
    from backoffice.devices import service

    settings = settings_or_exit()
    current = crypto.key_id(settings.secret_key)
    with connect(settings, "secrets") as conn:
        try:
            with conn.transaction():
                pending = service.rotation_pending(conn, settings.secret_key)
                columns = (TextColumn("re-encrypting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
                with Progress(*columns, console=err_console, transient=True) as bar:
                    task = bar.add_task("rotate", total=pending)
                    done = service.rotate(conn, settings.secret_key, Actor(f"cli:{getpass.getuser()}"),
                                          lambda n: bar.advance(task, n))  # fmt: skip
        except crypto.DecryptionError as err:
            err_console.print(f"[red]nothing rotated: {err}[/]", soft_wrap=True)
            raise typer.Exit(1) from None
    parts = ", ".join(f"{LABELS.get(column, column)} {n}" for column, n in done.items())
    console.print(f"re-encrypted {sum(done.values())} under key id {current} ({parts})", soft_wrap=True)
