"""Faults for the failover test, the failover benchmark and the chaos run: a PostgreSQL member dies
the way a machine does (kill -9 of Patroni and its PostgreSQL at once), then comes back and rejoins."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from devtools.ha import patroni
from devtools.ha.redis_sentinel import RedisNode
from devtools.ha.stack import HAStack
from devtools.process import StackError, wait_until


def kill_member(member: patroni.PatroniMember) -> None:
    """kill -9 Patroni and its postmaster together: nothing is shut down cleanly, the leader key is
    left to expire in etcd (Patroni's TTL), and a synchronous standby is promoted."""
    pids = [p for p in (member.pid(), member.postmaster_pid()) if p is not None]
    if not pids:
        raise StackError(f"{member.name} is not running")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_leader(stack: HAStack) -> tuple[patroni.PatroniMember, float]:
    """Kill the current leader; returns it and the monotonic instant of the kill."""
    leader = stack.leader()
    kill_member(leader)
    return leader, time.monotonic()


def wait_new_leader(stack: HAStack, old: patroni.PatroniMember, timeout: float = 120.0) -> patroni.PatroniMember:
    """Wait until another member than ``old`` leads and takes writes."""
    found: list[patroni.PatroniMember] = []

    def promoted() -> bool:
        i = patroni.leader_index(stack.ports)
        if i is None or i == old.index or stack.members[i].role() != "primary":
            return False
        found.append(stack.members[i])
        return True

    wait_until(promoted, f"a new leader after {old.name}", timeout)
    return found[-1]


def rejoin(stack: HAStack, member: patroni.PatroniMember, timeout: float = 180.0) -> None:
    """Start the killed member again (it rejoins as a standby, rewound if need be) and wait until the
    cluster again has a synchronous standby, so the next fault starts from a whole cluster."""
    member.up()
    wait_until(
        lambda: member.role() == "replica" and stack.healthy() and _all_streaming(stack),
        f"{member.name} to rejoin the cluster",
        timeout,
        log_file=member.log_file,
    )


def _all_streaming(stack: HAStack) -> bool:
    view = patroni.cluster(stack.ports) or {}
    states = [m.get("state") for m in view.get("members", [])]
    return len(states) == len(stack.members) and all(s in ("running", "streaming") for s in states)


def kill_redis_primary(stack: HAStack) -> tuple[RedisNode, float]:
    """kill -9 the Redis server the sentinels call primary; returns it and the instant of the kill."""
    master = stack.sentinels[0].master()
    if master is None:
        raise StackError("the sentinels name no Redis primary")
    node = next(r for r in stack.redis if r.port == master[1])
    pid = node.pid()
    if pid is None:
        raise StackError(f"{node.name} is not running")
    os.kill(pid, signal.SIGKILL)
    return node, time.monotonic()


def wait_redis_failover(stack: HAStack, old: RedisNode, timeout: float = 60.0) -> RedisNode:
    """Until every sentinel names another primary than ``old`` and that one takes writes."""
    found: list[RedisNode] = []

    def promoted() -> bool:
        addrs = {s.master() for s in stack.sentinels}
        if len(addrs) != 1 or None in addrs:
            return False
        (addr,) = addrs
        node = next((r for r in stack.redis if addr is not None and r.port == addr[1]), None)
        if node is None or node.index == old.index or node.role() != "master":
            return False
        found.append(node)
        return True

    wait_until(promoted, f"Sentinel to promote a Redis replica after {old.name}", timeout)
    return found[-1]


def restart_redis(stack: HAStack, node: RedisNode, timeout: float = 60.0) -> None:
    """Start a killed Redis again: it comes back as a primary of nothing and Sentinel makes it a replica."""
    node.up()
    wait_until(lambda: node.role() == "slave", f"{node.name} to rejoin as a replica", timeout, log_file=node.log_file)
