"""The project-owned local stack: PostgreSQL, Mosquitto and Redis on loopback under ``.paygo/``.

``up`` installs a missing server with apt-get (root on Debian), starts each server on its own
port, waits until it answers and is idempotent; ``down`` stops them and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

from backoffice.config import Settings
from devtools import tls
from devtools.install import ensure_installed, missing_packages
from devtools.mosquitto import Mosquitto
from devtools.nginx import Nginx
from devtools.postgres import OWNER, Postgres, admin_url, owner_url
from devtools.process import StackError
from devtools.redis_server import Redis
from devtools.server import Service, ServiceStatus

__all__ = ["Mosquitto", "Postgres", "Redis", "Stack", "StackError", "ServiceStatus", "drop_database", "fresh_database"]


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres = Postgres(settings)
        self.mosquitto = Mosquitto(settings)
        self.redis = Redis(settings)
        # nginx only with PAYGO_TLS=1 (HTTPS in front of the apps), but always stopped by ``down``
        self.nginx = Nginx(settings)
        self.services: list[Service] = [self.postgres, self.mosquitto, self.redis, self.nginx]

    def _wanted(self) -> list[Service]:
        return [s for s in self.services if s is not self.nginx or self.settings.tls]

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise concurrent up/down calls (a test run and a demo starting together)."""
        home = self.settings.home_dir
        home.mkdir(parents=True, exist_ok=True)
        with (home / "stack.lock").open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def up(self) -> list[str]:
        """Start what is not running; returns the names of the servers started now."""
        with self._lock():
            ensure_installed(missing_packages(tls=self.settings.tls))
            if self.settings.tls:
                tls.init(tls.tls_dir(self.settings))  # what is missing: a CA and the loopback certificate
            # Check every port before starting anything, so a clash leaves nothing half-started.
            for s in self._wanted():
                if not s.running():
                    s._check_port_free(wait_source=False)
            return [s.name for s in self._wanted() if s.up()]

    def down(self, only: list[str] | None = None) -> list[str]:
        with self._lock():
            return [s.name for s in reversed(self.services) if (only is None or s.name in only) and s.down()]

    def status(self) -> list[ServiceStatus]:
        return [s.status() for s in self.services if s in self._wanted() or s.running()]

    def all_running(self) -> bool:
        return all(s.running() for s in self._wanted())


def fresh_database(settings: Settings, name: str) -> Settings:
    """A new, migrated database ``name`` on the local stack (dropped first if it exists), and the
    settings that point at it: benchmarks run in one of their own."""
    import psycopg

    from backoffice.migrate import migrate

    Stack(settings).up()
    drop_database(settings, name)
    with psycopg.connect(admin_url(settings), autocommit=True) as conn:
        conn.execute(f'create database "{name}" owner {OWNER}')
    fresh = settings.model_copy(update={"database_url": owner_url(settings, name)})
    with psycopg.connect(fresh.database_url, autocommit=True) as conn:
        migrate(conn)
    return fresh


def drop_database(settings: Settings, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(settings), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
