"""What every local server has in common: its port, whether it runs, starting, stopping and status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backoffice.config import Settings
from devtools.process import StackError, port_open, port_owner, terminate, wait_until


@dataclass
class ServiceStatus:
    name: str
    port: int
    setting: str
    state: str  # "running", "stopped", "port taken"
    pid: int | None
    detail: str = ""


class Service:
    name: str
    setting: str
    package: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.home_dir / self.name

    @property
    def port(self) -> int:
        raise NotImplementedError

    def pid(self) -> int | None:
        raise NotImplementedError

    def running(self) -> bool:
        raise NotImplementedError

    def answers(self) -> bool:
        return port_open(self.port)

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid)

    def ports(self) -> list[tuple[int, str]]:
        """Every port the server listens on, with the setting that moves it."""
        return [(self.port, self.setting)]

    def _check_port_free(self) -> None:
        for port, setting in self.ports():
            if not port_open(port):
                continue
            owner = port_owner(port)
            who = f" (pid {owner.pid}, {owner.name()})" if owner else ""
            raise StackError(
                f"port {port} for {self.name} is already in use by another program{who}; "
                f"choose another port with {setting}=<port>, e.g. {setting}={port + 1}"
            )

    def up(self) -> bool:
        """Start the server if it is not running; True when it was started now."""
        if self.running():
            wait_until(self.answers, f"{self.name} on port {self.port}", log_file=self.log_file)
            return False
        self._check_port_free()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._start()
        wait_until(self.answers, f"{self.name} on port {self.port}", log_file=self.log_file)
        return True

    def down(self) -> bool:
        if not self.running():
            return False
        self._stop()
        return True

    @property
    def log_file(self) -> Path:
        return self.dir / f"{self.name}.log"

    def status(self) -> ServiceStatus:
        if self.running():
            return ServiceStatus(self.name, self.port, self.setting, "running", self.pid())
        if port_open(self.port):
            owner = port_owner(self.port)
            return ServiceStatus(
                self.name,
                self.port,
                self.setting,
                "port taken",
                owner.pid if owner else None,
                f"another program listens; change {self.setting}",
            )
        return ServiceStatus(self.name, self.port, self.setting, "stopped", None)
