"""Waiting for an event with a deadline: a condition polled, or a TCP port accepting connections."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

POLL_S = 0.1  # how often a condition is checked again (the wait ends at the first check that holds)


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll until check() is true; fail the test, naming ``what``, if it never becomes true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"{what} not reached within {timeout:g} s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 60.0, what: str | None = None) -> None:
    """Until a server accepts TCP connections on host:port."""
    wait_for(lambda: port_open(port, host), timeout, what or f"a server listening on {host}:{port}")
