"""What every local server has in common: its port, whether it runs, starting, stopping and status."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from backoffice.config import Settings
from devtools.process import StackError, bindable, ephemeral_range, port_open, port_owner, terminate, wait_until

log = logging.getLogger(__name__)

# How long a port held by a connection's source port (not by a listener) is waited for: a closed
# connection's TIME_WAIT lasts 60 s on Linux.
SOURCE_PORT_WAIT = 75.0


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
    # True when _start leaves the server's own process in the foreground with its pid file written
    # (so that ``running`` turns false as soon as it exits, e.g. when it cannot bind its port).
    foreground = False

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

    def _check_port_free(self, wait_source: bool = True) -> None:
        """No other server listens on our ports (else: say which setting moves them); with
        ``wait_source``, also wait until no connection holds one as its source port (checked right
        before the server starts, so that the port is not taken again meanwhile)."""
        for port, setting in self.ports():
            if not port_open(port):
                continue
            owner = port_owner(port)
            who = f" (pid {owner.pid}, {owner.name()})" if owner else ""
            raise StackError(
                f"port {port} for {self.name} is already in use by another program{who}; "
                f"choose another port with {setting}=<port>, e.g. {setting}={port + 1}"
            )
        for port, setting in self.ports() if wait_source else []:
            if not bindable(port):
                self._wait_source_port(port, setting)

    def _wait_source_port(self, port: int, setting: str) -> None:
        """No server listens on the port, yet it cannot be bound: an outgoing connection on this
        machine has it as its source port (ports in the ephemeral range are handed out to them).
        Once that connection is closed and its TIME_WAIT over, the port is free again."""
        low, high = ephemeral_range()
        why = f"port {port} for {self.name} is held by an outgoing connection's source port"
        if low <= port <= high:
            why += f" (it lies in the ephemeral range {low}-{high}, net.ipv4.ip_local_port_range)"
        log.warning("%s; waiting for it to be freed (at most %.0f s)", why, SOURCE_PORT_WAIT)
        started = time.monotonic()
        try:
            wait_until(lambda: bindable(port), why, SOURCE_PORT_WAIT)
            log.warning("port %d for %s was freed after %.1f s", port, self.name, time.monotonic() - started)
        except StackError:
            raise StackError(
                f"{why} and was not freed within {SOURCE_PORT_WAIT:.0f}s; choose ports below {low} with {setting}"
            ) from None

    def up(self) -> bool:
        """Start the server if it is not running; True when it was started now."""
        if self.running():
            wait_until(self.answers, f"{self.name} on port {self.port}", log_file=self.log_file)
            return False
        self._check_port_free()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._start()
        wait_until(self.answers, f"{self.name} on port {self.port}", log_file=self.log_file,
                   alive=self.running if self.foreground else None)  # fmt: skip
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
