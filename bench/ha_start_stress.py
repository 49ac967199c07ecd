"""Start and stop the HA stack several times under connection churn (issue 23, CI's "sentinel1 on port
36262 did not answer within 60s"): before each start a TIME_WAIT is left on one of the stack's ports
(the source port of a closed client connection, as any busy machine leaves hundreds of in Linux's
ephemeral range), while a thread keeps opening and closing loopback connections. Prints each start's
time and what it waited for; exits non-zero when a start fails.

    PAYGO_HA_PORT_BASE=37000 .venv/bin/python bench/ha_start_stress.py [--cycles 4]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
import time

from backoffice.config import Settings
from devtools.ha.stack import HAStack
from devtools.process import bindable


def leave_time_wait(port: int) -> None:
    """A client connection from ``port`` that closes first: the port stays in TIME_WAIT for 60 s."""
    if not bindable(port):  # held already (e.g. by the TIME_WAIT of an earlier run)
        return
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.socket()
        for _ in range(80):  # a TIME_WAIT of an earlier run may still hold it
            try:
                client.bind(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(1)
        client.connect(server.getsockname())
        accepted, _ = server.accept()
        client.close()
        accepted.close()


def churn(stop: threading.Event, counter: list[int], rate: float) -> None:
    """Short loopback connections, ``rate`` a second: each leaves its source port (an even one of the
    ephemeral range, Linux's preference for connect()) in TIME_WAIT for 60 s. At 40 a second about one
    even port in six is held at any moment; at 250 nearly all are, and no server can start on one."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(512)
        addr = server.getsockname()
        while not stop.is_set():
            c = socket.socket()
            c.connect(addr)
            a, _ = server.accept()
            c.close()
            a.close()
            counter[0] += 1
            time.sleep(1 / rate)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--churn", type=float, default=40.0, help="loopback connections a second")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    stack = HAStack(Settings())
    print(f"HA ports {stack.ports.base}..{max(stack.ports.all())}; load average {os.getloadavg()[0]:.1f}")
    stop, made = threading.Event(), [0]
    threading.Thread(target=churn, args=(stop, made, args.churn), daemon=True).start()
    failures = 0
    try:
        for cycle in range(1, args.cycles + 1):
            held = stack.ports.sentinel(1) if cycle % 2 else stack.ports.pg(2)
            leave_time_wait(held)
            assert not bindable(held)
            started = time.monotonic()
            try:
                stack.up()
                outcome = "up"
            except Exception as err:  # noqa: BLE001 - reported, and the run goes on
                outcome, failures = f"FAILED: {err}", failures + 1
            took = time.monotonic() - started
            print(f"cycle {cycle}: port {held} in TIME_WAIT at the start; {outcome} in {took:.1f} s "
                  f"(load {os.getloadavg()[0]:.1f}, {made[0]} churn connections so far)", flush=True)  # fmt: skip
            stack.down()
    finally:
        stop.set()
        stack.down()
    print(f"{args.cycles - failures} of {args.cycles} starts succeeded")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
