"""``paygo backup``: pgBackRest backups of the HA stack's PostgreSQL cluster and point-in-time restores
(docs/operations.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from backoffice import clock
from devtools.ha.restore import restore
from devtools.ha.stack import HAStack
from devtools.process import StackError
from paygo.cli.common import console, settings_or_exit, setup_logging

app = typer.Typer(help="Backups (pgBackRest) of the HA stack's database and point-in-time restores.",
                  no_args_is_help=True)  # fmt: skip


def _stack() -> HAStack:
    settings = settings_or_exit()
    setup_logging(settings)
    stack = HAStack(settings)
    if not stack.backup.conf.exists():
        raise StackError("no backup repository here: start the HA stack first with 'paygo stack up --ha'")
    return stack


@app.command("run")
def backup_run(
    kind: Annotated[
        str, typer.Option("--type", help="full, diff (since the last full) or incr (since the last backup)")
    ] = "full",
) -> None:
    """Take a backup from the cluster's leader into the repository (WAL is archived continuously)."""
    if kind not in ("full", "diff", "incr"):
        raise typer.BadParameter("--type must be full, diff or incr")
    b = _stack().backup.run_backup(kind)
    console.print(f"backup {b.label} ({b.kind}) {b.started:%Y-%m-%d %H:%M:%S} - {b.stopped:%H:%M:%S} UTC, "
                  f"{b.size / 1e6:.1f} MB, {b.repo_size / 1e6:.1f} MB in the repository")  # fmt: skip


@app.command("list")
def backup_list() -> None:
    """The backups in the repository and the span of archived WAL: a restore may target any instant after
    the first backup's end, up to the newest archived WAL."""
    stack = _stack()
    table = Table(title=f"backups in {stack.backup.repo}")
    for col in ("label", "type", "started (UTC)", "ended (UTC)", "database", "in repository", "WAL start", "WAL stop"):
        table.add_column(col)
    for b in stack.backup.list():
        table.add_row(b.label, b.kind, f"{b.started:%Y-%m-%d %H:%M:%S}", f"{b.stopped:%Y-%m-%d %H:%M:%S}",
                      f"{b.size / 1e6:.1f} MB", f"{b.repo_size / 1e6:.1f} MB", b.wal_start, b.wal_stop)  # fmt: skip
    console.print(table)
    for stanza in stack.backup.info():
        for arch in stanza.get("archive", []):
            console.print(f"archived WAL: {arch.get('min')} .. {arch.get('max')}")


@app.command("restore")
def backup_restore(
    to: Annotated[
        datetime | None,
        typer.Option(
            "--to",
            help="the instant to restore to, e.g. '2026-12-07 20:15:00+00:00' (a time without zone is UTC); "
            "left out: the end of the archive",
        ),
    ] = None,
    into: Annotated[str, typer.Option("--into", help="a fresh directory (default: .paygo/ha/restore/<instant>)")] = "",
    port: Annotated[
        int, typer.Option("--port", help="where the restored server listens (default: PAYGO_HA_PORT_BASE+450)")
    ] = 0,
) -> None:
    """Restore the cluster's database as it was at an instant into a fresh data directory and start it on
    a port of its own, beside the cluster (which is left alone). See docs/operations.md to make it the
    new cluster."""
    from pathlib import Path

    stack = _stack()
    target_at = to.replace(tzinfo=UTC) if to is not None and to.tzinfo is None else to
    stamp = (target_at or clock.utc_now()).strftime("%Y%m%dT%H%M%S")
    target = Path(into) if into else stack.dir / "restore" / stamp
    target.parent.mkdir(parents=True, exist_ok=True)
    if stack.running():  # archive the WAL written until now, so that a recent target is within reach
        stack.backup.archive_until_now()
    r = restore(stack.backup, target, target_at, port or stack.ports.restore)
    console.print(f"restored into {r.data} in {r.seconds_restore:.1f} s, recovered and promoted in "
                  f"{r.seconds_recovery:.1f} s; it answers at {r.url()}")  # fmt: skip
    console.print(f"stop it with: paygo backup stop-restored --into {r.data}")


@app.command("stop-restored")
def backup_stop_restored(into: Annotated[str, typer.Option("--into", help="the restored data directory")]) -> None:
    """Stop a server started by ``paygo backup restore``."""
    from pathlib import Path

    from devtools.ha.restore import Restored

    stack = _stack()
    r = Restored(Path(into), 0, stack.backup.user, 0.0, 0.0)
    r.stop()
    console.print(f"stopped the server on {into}")
