"""PostgreSQL failover time under Patroni (issue 23): how long writes are unavailable when the leader dies.

    .venv/bin/python bench/failover_bench.py [--kills 5] [--switchovers 2]

Starts the HA stack if it is not running (``paygo stack up --ha``: etcd, three PostgreSQL 15 members
under Patroni in synchronous mode), then runs a write probe (devtools/ha/probe.py: one committed
insert every 50 ms through libpq's multi-host string with target_session_attrs=read-write,
reconnecting on failure, the way the platform's services do) while it:

  faults     kills -9 the leader (Patroni and its PostgreSQL at once, like a machine dying) --kills
             times; after each, the killed member is started again and rejoins as a standby before
             the next kill;
  baseline   asks Patroni for a planned switchover (POST /switchover) --switchovers times.

For each it prints the write outage: the longest time without an acknowledged write from the fault
until a write is acknowledged by the new leader; then
p50 and worst per kind, and whether any acknowledged write is missing on the final leader.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request

from backoffice.config import load_settings
from devtools.ha import faults
from devtools.ha.patroni import LOOP_WAIT, TTL
from devtools.ha.probe import WriteProbe
from devtools.ha.stack import HAStack


def switchover(stack: HAStack) -> float:
    """Ask the leader's Patroni to hand over; returns the instant asked, once another member leads."""
    leader = stack.leader()
    req = urllib.request.Request(
        f"http://127.0.0.1:{leader.rest_port}/switchover",
        data=json.dumps({"leader": leader.name}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    at = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
    faults.wait_new_leader(stack, leader)
    return at


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--switchovers", type=int, default=2)
    args = ap.parse_args()

    settings = load_settings(environment="test")
    stack = HAStack(settings)
    stack.up()
    probe_settings = settings.model_copy(update={"database_url": stack.ports.database_url("postgres")})
    probe = WriteProbe(probe_settings).start()
    time.sleep(2)
    rows: list[tuple[str, str, str, float]] = []
    try:
        for k in range(args.switchovers):
            old = stack.leader()
            at = switchover(stack)
            probe.wait_write_after(time.monotonic())  # a write on the new leader
            gap = probe.longest_gap(at, time.monotonic())
            rows.append(("switchover", old.name, stack.leader().name, gap))
            print(
                f"switchover {k + 1}: {old.name} -> {stack.leader().name}  writes unavailable {gap:.2f} s", flush=True
            )
            faults.rejoin(stack, old)
        for k in range(args.kills):
            old, at = faults.kill_leader(stack)
            new = faults.wait_new_leader(stack, old)
            gap = probe.wait_write_after(at)
            rows.append(("kill -9 leader", old.name, new.name, gap))
            print(f"kill {k + 1}: {old.name} -> {new.name}  writes unavailable {gap:.2f} s", flush=True)
            faults.rejoin(stack, old)
    finally:
        probe.stop()
    lost = probe.lost()
    print()
    print(f"Patroni ttl={TTL}s loop_wait={LOOP_WAIT}s, synchronous_mode on; probe: 1 insert / 50 ms")
    print(f"{'fault':<16} {'n':>3} {'p50 s':>7} {'worst s':>8}")
    for kind in ("switchover", "kill -9 leader"):
        gaps = [g for k, _, _, g in rows if k == kind]
        if gaps:
            print(f"{kind:<16} {len(gaps):>3} {statistics.median(gaps):>7.2f} {max(gaps):>8.2f}")
    print(f"acknowledged writes: {len(probe.acked)}, missing on the final leader: {len(lost)}")
    if lost:
        raise SystemExit(f"acknowledged writes lost: {lost[:20]}")


if __name__ == "__main__":
    main()
