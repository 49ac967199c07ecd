"""Backups with point-in-time recovery by pgBackRest: every member archives its WAL into one local
repository (``archive-push``), ``backup`` takes a full (or incremental) backup from the leader, and
``restore`` brings a backup plus the archived WAL back into a fresh data directory up to a chosen
instant. The repository is under ``.paygo/ha/pgbackrest/repo``; production puts it on another
machine or an object store (repo1-type=s3), see docs/operations.md."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backoffice.config import Settings
from devtools.ha.ports import MEMBERS, HAPorts
from devtools.install import which
from devtools.process import StackError, is_root, make_traversable, run

STANZA = "paygo"
PG_OS_USER = "postgres"


@dataclass
class BackupInfo:
    label: str
    kind: str  # full, diff, incr
    started: datetime
    stopped: datetime
    size: int  # bytes of the database
    repo_size: int  # bytes in the repository (compressed)
    wal_start: str
    wal_stop: str


class Backup:
    def __init__(self, settings: Settings, ports: HAPorts) -> None:
        self.settings = settings
        self.ports = ports
        self.dir = settings.home_dir / "ha" / "pgbackrest"

    @property
    def user(self) -> str | None:
        return PG_OS_USER if is_root() else None

    @property
    def conf(self) -> Path:
        return self.dir / "pgbackrest.conf"

    @property
    def repo(self) -> Path:
        return self.dir / "repo"

    def member_data(self, i: int) -> Path:
        return self.settings.home_dir / "ha" / f"pg{i}" / "data"

    def archive_command(self, member: int) -> str:
        """Each member names its own data directory as pg1-path: PostgreSQL gives %p relative to it."""
        return (
            f"{self._binary()} --config={self.conf} --stanza={STANZA} --pg1-path={self.member_data(member)} "
            "archive-push %p"
        )

    def _binary(self) -> str:
        return which("pgbackrest") or "pgbackrest"

    def prepare(self) -> None:
        """Write the configuration: one repository, every member as a pgN so that ``backup`` finds the
        leader among them whichever it is."""
        for d in (self.dir, self.repo, self.dir / "log", self.dir / "lock", self.dir / "spool"):
            d.mkdir(parents=True, exist_ok=True)
        lines = [
            "# written by 'paygo stack up --ha'",
            "[global]",
            f"repo1-path={self.repo}",
            "repo1-retention-full=2",
            f"log-path={self.dir / 'log'}",
            f"lock-path={self.dir / 'lock'}",
            f"spool-path={self.dir / 'spool'}",
            "log-level-console=warn",
            "log-level-file=info",
            "compress-type=lz4",
            "start-fast=y",
            "process-max=2",
            "archive-timeout=60",
            "",
            f"[{STANZA}]",
        ]
        for i in range(MEMBERS):
            n = i + 1
            lines += [
                f"pg{n}-path={self.member_data(i)}",
                f"pg{n}-port={self.ports.pg(i)}",
                f"pg{n}-socket-path={self.settings.home_dir / 'ha' / f'pg{i}' / 'run'}",
                f"pg{n}-user=paygo",
                f"pg{n}-database=postgres",
            ]
        self.conf.write_text("\n".join(lines) + "\n")
        if self.user:
            make_traversable(self.dir, self.user)
            for p in [self.dir, *self.dir.rglob("*")]:
                shutil.chown(p, self.user, self.user)

    def _run(self, *args: str, timeout: float = 600) -> str:
        cmd = [self._binary(), f"--config={self.conf}", f"--stanza={STANZA}", *args]
        try:
            return run(cmd, user=self.user, timeout=timeout).stdout
        except subprocess.CalledProcessError as err:
            why = (err.stderr or err.stdout or "").strip()[-800:]
            raise StackError(f"pgbackrest {args[-1] if args else ''} failed: {why}") from err

    def ensure_stanza(self) -> None:
        """Create the stanza (idempotent) and check that WAL reaches the repository."""
        self._run("stanza-create")

    def check(self) -> None:
        self._run("check")

    def archive_until_now(self) -> None:
        """Make the archive reach the present: a committed transaction (a recovery to an instant stops
        at the first commit after it, so one must exist), then a WAL switch archived (``check``)."""
        import psycopg

        with psycopg.connect(self.ports.database_url("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute("select txid_current()")  # assigns a transaction id: its commit is a WAL record
        self.check()

    def run_backup(self, kind: str = "full") -> BackupInfo:
        self._run(f"--type={kind}", "backup", timeout=3600)
        return self.list()[-1]

    def info(self) -> list[dict[str, Any]]:
        return list(json.loads(self._run("--output=json", "info")))

    def list(self) -> list[BackupInfo]:
        from datetime import UTC

        out = []
        for stanza in self.info():
            for b in stanza.get("backup", []):
                out.append(
                    BackupInfo(
                        label=b["label"],
                        kind=b["type"],
                        started=datetime.fromtimestamp(b["timestamp"]["start"], UTC),
                        stopped=datetime.fromtimestamp(b["timestamp"]["stop"], UTC),
                        size=int(b["info"]["size"]),
                        repo_size=int(b["info"]["repository"]["delta"]),
                        wal_start=b["archive"]["start"],
                        wal_stop=b["archive"]["stop"],
                    )
                )
        return out

    def restore(self, target: Path, to: datetime | None) -> None:
        """Restore the newest backup taken before ``to`` into the empty directory ``target`` and set it
        to replay the archived WAL up to ``to`` (None: to the end of the archive), then promote."""
        if target.exists() and any(target.iterdir()):
            raise StackError(f"{target} is not empty; restore goes into a fresh directory")
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.user:
            make_traversable(target, self.user)
            shutil.chown(target, self.user, self.user)
        args = [f"--pg1-path={target}", "--delta"]
        if to is not None:
            args += ["--type=time", f"--target={to.isoformat(sep=' ')}", "--target-action=promote"]
        else:
            args += ["--type=default"]
        self._run(*args, "restore", timeout=3600)
