"""Process helpers of the local stack: ports, pid files, waiting for a server, running as a service user."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


class StackError(Exception):
    """Something the operator has to act on; the message says what to do."""


def is_root() -> bool:
    return os.geteuid() == 0


def is_debian() -> bool:
    return Path("/etc/debian_version").exists()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def port_owner(port: int) -> psutil.Process | None:
    """The process listening on a TCP port, when we may see it."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, PermissionError):
        return None
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            try:
                return psutil.Process(c.pid)
            except psutil.NoSuchProcess:
                return None
    return None


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().split()
    except (FileNotFoundError, PermissionError):
        return None
    if not text or not text[0].isdigit():
        return None
    return int(text[0])


def alive(pid: int | None, name_hint: str) -> bool:
    """True when pid is a live process whose command line mentions name_hint (guards reused pids)."""
    if pid is None:
        return False
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return name_hint in " ".join(p.cmdline()) or name_hint in p.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def terminate(pid: int, timeout: float = 30.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid):
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def wait_until(
    check: Callable[[], object],
    what: str,
    timeout: float = 60.0,
    log_file: Path | None = None,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll ``check`` until it is true. ``alive``: whether the server's process still runs; once it
    has exited there is nothing to wait for. A server that does not answer is reported with the end
    of its log, so that a CI run's output shows why."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - a server that is starting may refuse in many ways
            pass
        if alive is not None and not alive():
            raise StackError(f"{what}: the process exited{_log_hint(log_file)}")
        time.sleep(0.2)
    raise StackError(f"{what} did not answer within {timeout:.0f}s{_log_hint(log_file)}")


LOG_TAIL_LINES = 25


def log_tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a server's log ('' when it cannot be read)."""
    try:
        with log_file.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - 64 * 1024, 0))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _log_hint(log_file: Path | None) -> str:
    if log_file is None:
        return ""
    tail = log_tail(log_file)
    shown = f"; the end of {log_file}:\n{tail}" if tail else f"; {log_file} is empty or missing"
    return shown


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_range() -> tuple[int, int]:
    """The ports Linux hands out as source ports of outgoing connections (32768-60999 by default)."""
    try:
        low, high = (int(x) for x in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind the port now. False also when no server listens there but a
    connection uses it as its source port (established or in TIME_WAIT): Linux refuses the bind
    then, even with SO_REUSEADDR, which every server of ours sets."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def run(cmd: list[str], user: str | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def make_traversable(path: Path, user: str) -> None:
    """Let a service user reach its data dir: add the search (x) bit on ancestors that lack it.

    Needed when the checkout lives under a private directory such as one made by ``mktemp -d``.
    Only the execute bit is added; nothing becomes readable or writable.
    """
    uid = pwd.getpwnam(user).pw_uid
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid == uid:
            continue
        if not st.st_mode & 0o001:
            log.info("adding o+x to %s so that user %s can reach %s", parent, user, path)
            os.chmod(parent, st.st_mode | 0o001)
