"""Redis with failover: a primary, a replica and three Sentinels on loopback. Sentinel watches the
primary (master name ``paygo``), promotes the replica when two sentinels agree it is down, and tells
clients (kombu's ``sentinel://`` transport, Celery's sentinel result backend) where the primary is.

Both Redis and Sentinel rewrite their own configuration files after a failover (who replicates whom),
so a file is written only when it does not exist yet: a restart keeps what Sentinel decided."""

from __future__ import annotations

from pathlib import Path

from backoffice.config import Settings
from devtools.ha.etcd import spawn
from devtools.ha.ports import HAPorts
from devtools.install import which
from devtools.process import StackError, alive, read_pid
from devtools.server import Service

MASTER_NAME = "paygo"
QUORUM = 2
DOWN_AFTER_MS = 2000  # a primary silent this long is down for a sentinel
FAILOVER_TIMEOUT_MS = 10000


class _RedisProcess(Service):
    setting = "PAYGO_HA_PORT_BASE"
    package = "redis-server"
    hint = "redis-server"
    foreground = True

    def __init__(self, settings: Settings, ports: HAPorts, index: int) -> None:
        super().__init__(settings)
        self.ha = ports
        self.index = index
        self.dir = settings.home_dir / "ha" / self.name

    @property
    def pid_file(self) -> Path:
        return self.dir / f"{self.name}.pid"

    @property
    def conf(self) -> Path:
        return self.dir / f"{self.name}.conf"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def running(self) -> bool:
        return alive(self.pid(), self.hint)

    def answers(self) -> bool:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())

    def _lines(self) -> list[str]:
        raise NotImplementedError

    def _binary(self) -> str:
        found = which("redis-server")
        if found is None:
            raise StackError("redis-server not found; run 'paygo stack up --ha' as root to install it")
        return found

    def _start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.conf.exists():
            common = [
                "# written by 'paygo stack up --ha' once; Redis/Sentinel rewrite it after a failover",
                "bind 127.0.0.1",
                f"port {self.port}",
                f"pidfile {self.pid_file}",
                f"logfile {self.log_file}",
                f"dir {self.dir}",
                "protected-mode yes",
            ]
            self.conf.write_text("\n".join(common + self._lines()) + "\n")
        # In the foreground (a session of its own): its pid is known at once, so a server that
        # exits (e.g. it cannot bind its port) is reported with its log instead of waited for.
        spawn([*self._command(), "--daemonize", "no"], self.log_file, self.pid_file, cwd=self.dir)

    def _command(self) -> list[str]:
        return [self._binary(), str(self.conf)]


class RedisNode(_RedisProcess):
    """Node 0 starts as the primary, node 1 as its replica; afterwards Sentinel decides."""

    def __init__(self, settings: Settings, ports: HAPorts, index: int) -> None:
        self.name = f"redis{index}"
        super().__init__(settings, ports, index)

    @property
    def port(self) -> int:
        return self.ha.redis(self.index)

    def _lines(self) -> list[str]:
        lines = ["appendonly yes", "appendfsync everysec", "save 60 1000"]
        if self.index > 0:
            lines.append(f"replicaof 127.0.0.1 {self.ha.redis(0)}")
        return lines

    def role(self) -> str | None:
        import redis

        try:
            info = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).info("replication")
        except redis.RedisError:
            return None
        return str(info.get("role"))


class Sentinel(_RedisProcess):
    package = "redis-sentinel"

    def __init__(self, settings: Settings, ports: HAPorts, index: int) -> None:
        self.name = f"sentinel{index}"
        super().__init__(settings, ports, index)

    @property
    def port(self) -> int:
        return self.ha.sentinel(self.index)

    def _lines(self) -> list[str]:
        return [
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.ha.redis(0)} {QUORUM}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
        ]

    def _command(self) -> list[str]:
        return [self._binary(), str(self.conf), "--sentinel"]

    def master(self) -> tuple[str, int] | None:
        import redis

        try:
            addr = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).execute_command(
                "SENTINEL", "get-master-addr-by-name", MASTER_NAME
            )
        except redis.RedisError:
            return None
        if not addr:
            return None
        host, port = addr
        return (host.decode() if isinstance(host, bytes) else str(host)), int(port)
