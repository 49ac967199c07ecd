"""The local PostgreSQL: a cluster of its own under ``.paygo/postgres`` (run as the ``postgres`` user
when we are root, as PostgreSQL refuses root), with TimescaleDB when the extension is installed;
and fresh databases for benchmarks."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from backoffice.config import DATABASE_ROLES, Settings
from backoffice.migrate import ROLES_SQL
from devtools.install import pg_bindir
from devtools.process import StackError, alive, is_root, make_traversable, read_pid, run, wait_until
from devtools.server import Service

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# Servers refuse or should not run as root; when we are root they run as this system user.
PG_OS_USER = "postgres"
# The cluster's superuser is "paygo" (initdb -U paygo): only these tools use it, to create roles and
# databases. The platform's processes log in as the roles of backoffice/database_roles.sql.
OWNER = DATABASE_ROLES["owner"]
ROLES_MIGRATION = "0044"  # the migration that hands an older database's objects to the owner


def ensure_roles(admin: psycopg.Connection) -> None:
    """Create the platform's roles on the cluster (idempotent), given a superuser's connection."""
    admin.execute(ROLES_SQL.read_bytes())


class PostgresFiles:
    """Where a PostgreSQL server of ours keeps its data and sockets, and the OS user it runs as (root
    may not run PostgreSQL): shared by the local stack's server and the HA stack's Patroni members."""

    dir: Path

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def user(self) -> str | None:
        return PG_OS_USER if is_root() else None


class Postgres(PostgresFiles, Service):
    name = "postgres"
    setting = "PAYGO_PG_PORT"
    package = "postgresql"

    @property
    def port(self) -> int:
        return self.settings.pg_port

    def _bindir(self) -> Path:
        b = pg_bindir()
        if b is None:
            raise StackError("PostgreSQL server binaries not found; run 'paygo stack up' as root to install")
        return b

    def pid(self) -> int | None:
        return read_pid(self.data / "postmaster.pid")

    def running(self) -> bool:
        return alive(self.pid(), "postgres")

    def answers(self) -> bool:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="paygo", dbname="postgres", connect_timeout=2
        ) as conn:
            conn.execute("select 1")
        return True

    def timescaledb_available(self) -> bool:
        libdir = self._bindir().parent / "lib"
        return bool(list(libdir.glob("timescaledb*.so")))

    def _initdb(self) -> None:
        bindir = self._bindir()
        if self.user:
            make_traversable(self.dir, self.user)
            shutil.chown(self.dir, self.user, self.user)
        self.data.mkdir(mode=0o700, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        if self.user:
            for p in (self.data, self.run_dir):
                shutil.chown(p, self.user, self.user)
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "paygo",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            user=self.user,
        )
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\ninclude_if_exists = 'paygo.conf'\n")

    def _write_conf(self) -> None:
        lines = [
            "# written by 'paygo stack up' on every start; edit the settings, not this file",
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.run_dir}'",
            "max_connections = 200",
            "shared_buffers = 512MB",
            "work_mem = 32MB",
            "maintenance_work_mem = 256MB",
            "max_wal_size = 4GB",
            "checkpoint_timeout = 15min",
            "log_min_duration_statement = 2000",
            # Instants in UTC whatever TZ the stack was started under (the services set it too).
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
        ]
        if self.timescaledb_available():
            lines.append("shared_preload_libraries = 'timescaledb'")
            lines.append("timescaledb.telemetry_level = off")
        conf = self.data / "paygo.conf"
        conf.write_text("\n".join(lines) + "\n")
        if self.user:
            shutil.chown(conf, self.user, self.user)

    def _start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            if self.data.exists() and any(self.data.iterdir()):
                raise StackError(f"{self.data} exists but holds no database cluster; move it away")
            self._initdb()
        self._write_conf()
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists():  # stale: running() already said no live postgres owns it
            log.warning("removing stale %s", pidfile)
            pidfile.unlink()
        log_file = self.log_file
        if self.user:
            log_file.touch()
            shutil.chown(log_file, self.user, self.user)
        try:
            run(
                [str(self._bindir() / "pg_ctl"), "-D", str(self.data), "-l", str(log_file), "-w", "-t", "60", "start"],
                user=self.user,
            )
        except subprocess.CalledProcessError as err:
            tail = log_file.read_text()[-800:] if log_file.exists() else ""
            raise StackError(f"PostgreSQL did not start: {err.stderr.strip()} {tail}") from err
        wait_until(self.answers, "postgres", log_file=log_file)
        self._ensure_database()

    def _ensure_database(self) -> None:
        """The platform's roles (backoffice/database_roles.sql, as in production) and its database, which
        belongs to the owner role. A database made before the roles existed is migrated as far as
        migration 0044 here, as the superuser, which hands every object to the owner."""
        import psycopg

        from backoffice.migrate import migrate

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="paygo", dbname="postgres", autocommit=True
        ) as conn:
            ensure_roles(conn)
            if conn.execute("select 1 from pg_database where datname = 'paygo'").fetchone() is None:
                conn.execute(f"create database paygo owner {OWNER}")
            else:  # made before the roles: the owner may create in it (PostgreSQL 15 gives that to the owner)
                conn.execute(f"alter database paygo owner to {OWNER}")
        with psycopg.connect(host="127.0.0.1", port=self.port, user="paygo", dbname="paygo", autocommit=True) as conn:
            if self.timescaledb_available():
                conn.execute("create extension if not exists timescaledb")
            older = conn.execute(
                "select 1 from pg_tables where tablename = 'schema_migrations' and tableowner <> %s", (OWNER,)
            ).fetchone()
            if older is not None:
                migrate(conn, until=ROLES_MIGRATION)

    def _stop(self) -> None:
        try:
            run(
                [str(self._bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"],
                user=self.user,
            )
        except subprocess.CalledProcessError:
            super()._stop()


def owner_url(settings: Settings, name: str) -> str:
    """The local database ``name`` as its owner (migrations, tests' and benchmarks' own rows); the
    services derive their own role's URL from it (Settings.database_url_for)."""
    return f"postgresql://{OWNER}@127.0.0.1:{settings.pg_port}/{name}"


def admin_url(settings: Settings) -> str:
    return f"postgresql://paygo@127.0.0.1:{settings.pg_port}/postgres"
