"""A point-in-time restore brought up beside the cluster: pgBackRest restores into a fresh data
directory, PostgreSQL replays the archived WAL up to the target instant, promotes, and answers on a
port of its own (never one of the cluster's). Used by ``paygo backup restore`` and the restore drill."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from devtools.ha.backup import Backup
from devtools.install import pg_bindir
from devtools.process import StackError, alive, read_pid, run


@dataclass
class Restored:
    data: Path
    port: int
    user: str | None
    seconds_restore: float  # pgbackrest restore (files)
    seconds_recovery: float  # WAL replay to the target, promotion, first connection

    def url(self, dbname: str = "paygo") -> str:
        return f"postgresql://paygo@127.0.0.1:{self.port}/{dbname}"

    def running(self) -> bool:
        return alive(read_pid(self.data / "postmaster.pid"), "postgres")

    def stop(self) -> None:
        bindir = pg_bindir()
        if bindir is not None and self.running():
            run([str(bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], user=self.user)


def restore(backup: Backup, target: Path, to: datetime | None, port: int, timeout: float = 600.0) -> Restored:
    """Restore into ``target`` (fresh) up to ``to`` (None: the end of the archive) and start it on ``port``."""
    bindir = pg_bindir()
    if bindir is None:
        raise StackError("PostgreSQL server binaries not found")
    started = time.monotonic()
    backup.restore(target, to)
    restored_at = time.monotonic()
    user = backup.user
    run_dir = target.parent / f"{target.name}.run"
    run_dir.mkdir(exist_ok=True)
    if user:
        shutil.chown(run_dir, user, user)
    log = target.parent / f"{target.name}.log"
    log.touch()
    if user:
        shutil.chown(log, user, user)
    # The members' settings came with the backup (Patroni's postgresql.conf); these override what must
    # differ here: its own port and socket, no archiving into the cluster's repository, no replication.
    options = (
        f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={run_dir} "
        "-c archive_mode=off -c hot_standby=on -c synchronous_standby_names='' -c cluster_name=paygo-restore"
    )
    try:
        run([str(bindir / "pg_ctl"), "-D", str(target), "-l", str(log), "-o", options, "-w", "-t", str(int(timeout)),
             "start"], user=user)  # fmt: skip
    except subprocess.CalledProcessError as err:
        tail = log.read_text()[-1500:] if log.exists() else ""
        raise StackError(f"the restored PostgreSQL did not start: {err.stderr.strip()} {tail}") from err
    result = Restored(target, port, user, restored_at - started, 0.0)
    deadline = time.monotonic() + timeout
    while not _promoted(result):
        if not result.running():  # e.g. the target lies past the archived WAL: PostgreSQL says so and stops
            raise StackError(f"the restored PostgreSQL stopped during recovery: {_last_fatal(log)}; see {log}")
        if time.monotonic() > deadline:
            raise StackError(f"the restored PostgreSQL did not finish recovery within {timeout:.0f}s; see {log}")
        time.sleep(0.2)
    result.seconds_recovery = time.monotonic() - restored_at
    return result


def _promoted(r: Restored) -> bool:
    import psycopg

    try:
        with psycopg.connect(r.url("postgres"), connect_timeout=2) as conn:
            row = conn.execute("select pg_is_in_recovery()").fetchone()
            return row is not None and row[0] is False
    except psycopg.OperationalError:
        return False


def _last_fatal(log: Path) -> str:
    lines = [line for line in log.read_text().splitlines() if "FATAL" in line] if log.exists() else []
    return lines[-1].split("FATAL:", 1)[-1].strip() if lines else "no reason in its log"
