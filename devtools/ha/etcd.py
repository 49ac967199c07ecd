"""One etcd on loopback: the store where Patroni members hold the leader key (one member is enough
locally; production runs three or five on separate machines)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from backoffice.config import Settings
from devtools.ha.ports import HAPorts
from devtools.install import which
from devtools.process import StackError, alive, read_pid
from devtools.server import Service


def spawn(cmd: list[str], log_file: Path, pid_file: Path, user: str | None = None, cwd: Path | None = None) -> int:
    """Start a server that stays in the foreground as a process of its own session (it outlives the
    command that started it), its output appended to log_file, its pid written to pid_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            cwd=cwd,
            env=_env(user),
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _env(user: str | None) -> dict[str, str]:
    import os
    import pwd

    env = {k: v for k, v in os.environ.items() if not k.startswith("PGSERVICE")}
    if user:
        home = pwd.getpwnam(user).pw_dir
        env.update(HOME=home, USER=user, LOGNAME=user)
    return env


class Etcd(Service):
    name = "etcd"
    setting = "PAYGO_HA_PORT_BASE"
    package = "etcd-server"
    foreground = True

    def __init__(self, settings: Settings, ports: HAPorts) -> None:
        super().__init__(settings)
        self.ha = ports
        self.dir = settings.home_dir / "ha" / "etcd"

    @property
    def port(self) -> int:
        return self.ha.etcd_client

    def ports(self) -> list[tuple[int, str]]:
        return [(self.ha.etcd_client, self.setting), (self.ha.etcd_peer, self.setting)]

    @property
    def pid_file(self) -> Path:
        return self.dir / "etcd.pid"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def running(self) -> bool:
        return alive(self.pid(), "etcd")

    def answers(self) -> bool:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
            return b'"true"' in r.read()

    def _start(self) -> None:
        binary = which("etcd")
        if binary is None:
            raise StackError("etcd not found; run 'paygo stack up --ha' as root to install etcd-server")
        client = f"http://127.0.0.1:{self.ha.etcd_client}"
        peer = f"http://127.0.0.1:{self.ha.etcd_peer}"
        spawn(
            [
                binary,
                "--name=paygo",
                f"--data-dir={self.dir / 'data'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=paygo={peer}",
                "--initial-cluster-state=new",
                "--log-level=warn",
            ],
            self.log_file,
            self.pid_file,
        )
