"""The local Redis: the Celery broker and result backend, on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devtools.install import which
from devtools.process import StackError, alive, read_pid, run
from devtools.server import Service


class Redis(Service):
    name = "redis"
    setting = "PAYGO_REDIS_PORT"
    package = "redis-server"

    @property
    def port(self) -> int:
        return self.settings.redis_port

    @property
    def pid_file(self) -> Path:
        return self.dir / "redis.pid"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def running(self) -> bool:
        return alive(self.pid(), "redis-server")

    def answers(self) -> bool:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())

    def _start(self) -> None:
        binary = which("redis-server")
        if binary is None:
            raise StackError("redis-server not found; run 'paygo stack up' as root to install it")
        if self.pid_file.exists():
            self.pid_file.unlink()
        conf = self.dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "# written by 'paygo stack up'",
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    "daemonize yes",
                    f"pidfile {self.pid_file}",
                    f"logfile {self.log_file}",
                    f"dir {self.dir}",
                    "save 60 1000",
                    "appendonly no",
                    "protected-mode yes",
                ]
            )
            + "\n"
        )
        try:
            run([binary, str(conf)])
        except subprocess.CalledProcessError as err:
            raise StackError(f"redis-server did not start: {err.stderr.strip()}") from err
