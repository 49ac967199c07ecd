"""PostgreSQL 15 members under Patroni: Patroni starts, stops, promotes and rewinds PostgreSQL; the
leader key lives in etcd. Synchronous mode: a commit is acknowledged only once a standby has it, and
Patroni promotes only a synchronous standby, so an acknowledged commit survives the leader's loss."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backoffice.config import Settings
from devtools.ha.etcd import spawn
from devtools.ha.ports import MEMBERS, HAPorts
from devtools.install import pg_bindir, which
from devtools.postgres import PostgresFiles
from devtools.process import StackError, alive, make_traversable, read_pid
from devtools.server import Service

SCOPE = "paygo"
# Failure detection: the leader key lives TTL seconds unless renewed (every LOOP_WAIT); a standby
# takes over about TTL seconds after the leader died. Patroni wants LOOP_WAIT + 2 * RETRY_TIMEOUT <= TTL;
# RETRY_TIMEOUT is how long a slow etcd may stall before the leader steps down (a shared, busy machine
# must not make the cluster flap), so TTL is not shorter. Set at bootstrap only (then: patronictl
# edit-config).
TTL, LOOP_WAIT, RETRY_TIMEOUT = 15, 1, 5


def rest_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, Any]:
    """A Patroni REST API answer: (HTTP status, JSON body); 503 and friends are answers too."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body or b"null")
        except ValueError:
            return err.code, None


class PatroniMember(PostgresFiles, Service):
    setting = "PAYGO_HA_PORT_BASE"
    package = "patroni"
    foreground = True

    def __init__(self, settings: Settings, ports: HAPorts, index: int, archive_command: str = "") -> None:
        self.name = f"pg{index}"
        super().__init__(settings)
        self.ha = ports
        self.index = index
        self.dir = settings.home_dir / "ha" / self.name
        self.archive_command = archive_command

    @property
    def port(self) -> int:
        return self.ha.pg(self.index)

    @property
    def rest_port(self) -> int:
        return self.ha.rest(self.index)

    def ports(self) -> list[tuple[int, str]]:
        return [(self.port, self.setting), (self.rest_port, self.setting)]

    @property
    def pid_file(self) -> Path:
        return self.dir / "patroni.pid"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def postmaster_pid(self) -> int | None:
        pid = read_pid(self.data / "postmaster.pid")
        return pid if alive(pid, "postgres") else None

    def running(self) -> bool:
        return alive(self.pid(), "patroni")

    def answers(self) -> bool:
        """PostgreSQL runs under this member's Patroni (leader or standby)."""
        status, body = rest_get(self.rest_port, "/health")
        return status == 200 and bool(body) and body.get("state") == "running"

    def role(self) -> str | None:
        """'primary', 'replica' (Patroni's word for a standby) or None when it does not answer."""
        try:
            status, body = rest_get(self.rest_port, "/patroni")
        except OSError:
            return None
        if not body:
            return None
        role = body.get("role")
        return "primary" if role in ("master", "primary") else role

    def config(self) -> dict[str, Any]:
        bindir = pg_bindir()
        if bindir is None:
            raise StackError("PostgreSQL server binaries not found; run 'paygo stack up --ha' as root to install")
        parameters: dict[str, Any] = {
            "wal_level": "replica",
            "hot_standby": "on",
            "wal_log_hints": "on",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "max_connections": 200,
            "shared_buffers": "256MB",
            "work_mem": "32MB",
            "max_wal_size": "1GB",
            "log_min_duration_statement": 2000,
        }
        # Each member archives its WAL with its own data directory named (devtools/ha/backup.py); a
        # segment at least every minute bounds what a restore from the archive alone can lose.
        local: dict[str, Any] = {"unix_socket_directories": str(self.run_dir)}
        if self.archive_command:
            local.update(archive_mode="on", archive_command=self.archive_command, archive_timeout=60)
        return {
            "scope": SCOPE,
            "namespace": "/paygo/",
            "name": self.name,
            "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
            "restapi": {
                "listen": f"127.0.0.1:{self.rest_port}",
                "connect_address": f"127.0.0.1:{self.rest_port}",
            },
            "etcd3": {"hosts": [f"127.0.0.1:{self.ha.etcd_client}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL,
                    "loop_wait": LOOP_WAIT,
                    "retry_timeout": RETRY_TIMEOUT,
                    "maximum_lag_on_failover": 1024 * 1024,
                    "synchronous_mode": True,
                    "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": parameters},
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, {"auth": "trust"}],
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.1/32 trust",
                    "host replication all 127.0.0.1/32 trust",
                ],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{self.port}",
                "connect_address": f"127.0.0.1:{self.port}",
                "data_dir": str(self.data),
                "bin_dir": str(bindir),
                "pgpass": str(self.dir / "pgpass"),
                "authentication": {
                    "superuser": {"username": "paygo"},
                    "replication": {"username": "replicator"},
                    "rewind": {"username": "paygo"},
                },
                "parameters": local,
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.1/32 trust",
                    "host replication all 127.0.0.1/32 trust",
                ],
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def _start(self) -> None:
        binary = which("patroni")
        if binary is None:
            raise StackError("patroni not found; run 'paygo stack up --ha' as root to install it")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        conf = self.dir / "patroni.yml"
        conf.write_text(json.dumps(self.config(), indent=2) + "\n")  # YAML is a superset of JSON
        if self.user:
            make_traversable(self.dir, self.user)
            for p in (self.dir, self.run_dir, conf):
                shutil.chown(p, self.user, self.user)
            self.log_file.touch()
            shutil.chown(self.log_file, self.user, self.user)
        spawn([binary, str(conf)], self.log_file, self.pid_file, user=self.user, cwd=self.dir)

    def _stop(self) -> None:
        # Patroni stops its PostgreSQL (fast shutdown) on SIGTERM before it exits.
        super()._stop()
        pm = self.postmaster_pid()
        if pm is not None:
            from devtools.process import terminate

            terminate(pm)

    @property
    def log_file(self) -> Path:
        return self.dir / "patroni.log"


def members(settings: Settings, ports: HAPorts, archive_command: Callable[[int], str]) -> list[PatroniMember]:
    return [PatroniMember(settings, ports, i, archive_command(i)) for i in range(MEMBERS)]


def cluster(ports: HAPorts) -> dict[str, Any] | None:
    """Patroni's view of the cluster (GET /cluster) from the first member that answers."""
    for i in range(MEMBERS):
        try:
            status, body = rest_get(ports.rest(i), "/cluster")
        except OSError:
            continue
        if status == 200 and body:
            return dict(body)
    return None


def leader_index(ports: HAPorts) -> int | None:
    """Which member holds the leader key and runs, per Patroni."""
    view = cluster(ports)
    if not view:
        return None
    for m in view.get("members", []):
        if m.get("role") == "leader" and m.get("state") == "running":
            return int(str(m["name"]).removeprefix("pg"))
    return None


def sync_standby_ready(ports: HAPorts) -> bool:
    view = cluster(ports) or {}
    return any(
        m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming") for m in view.get("members", [])
    )
