"""Where the HA stack listens (devtools/ha/ports.py): below Linux's ephemeral range, clear of the local
stack's ports, and a port held by an outgoing connection's source port is recognised as such."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from backoffice.config import Settings
from devtools.ha.ports import DEFAULT_BASE, HAPorts
from devtools.ha.stack import HAStack
from devtools.process import StackError, bindable, port_open, wait_until

LINUX_EPHEMERAL_LOW = 32768  # the kernel's default net.ipv4.ip_local_port_range is 32768-60999


def local_stack_ports(k: int) -> set[int]:
    """The ports of worktree K's local stack (/work/ports.sh's rule; K=0 are the settings' defaults)."""
    s = Settings()
    return {
        55432 + 100 * k, 18830 + 100 * k, 16379 + 100 * k, 18000 + 100 * k, 18001 + 100 * k, 18883 + 100 * k,
        s.https_port, s.device_https_port,
    }  # fmt: skip


def test_default_ha_ports_lie_below_the_ephemeral_range_and_clear_of_the_local_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PAYGO_HA_PORT_BASE", raising=False)
    ports = HAPorts.from_env()
    assert ports.base == DEFAULT_BASE
    assert max(ports.all()) < LINUX_EPHEMERAL_LOW
    assert len(set(ports.all())) == len(ports.all())
    taken = set().union(*(local_stack_ports(k) for k in range(10)))
    assert not taken & set(ports.all())


def test_a_source_port_in_use_is_not_bindable_though_nothing_listens() -> None:
    """What stopped a sentinel in CI: a connection's source port (here in TIME_WAIT, as after any
    short-lived client connection) cannot be bound by a server, SO_REUSEADDR or not."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.socket()
        client.connect(server.getsockname())
        source = client.getsockname()[1]
        accepted, _ = server.accept()
        assert not bindable(source)  # established
        client.close()  # the side that closes first keeps the TIME_WAIT
        accepted.close()
        assert not port_open(source)  # nothing listens there...
        assert not bindable(source)  # ...yet no server can take it


def test_a_stack_made_with_other_ports_is_refused_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nodes of a stack record their ports (etcd, Patroni, Sentinel's rewritten files): started
    with another PAYGO_HA_PORT_BASE it is refused, before anything starts, saying what to do."""
    monkeypatch.setenv("PAYGO_HA_PORT_BASE", "25000")
    stack = HAStack(Settings(home=tmp_path))
    stack.dir.mkdir(parents=True)
    stack.ports_file.write_text("24000\n")
    with pytest.raises(StackError, match=r"PAYGO_HA_PORT_BASE=24000.*paygo stack down --ha --wipe"):
        stack.up()
    assert not any(s.running() for s in stack.services)
    # A stack made before the file existed: its ports are read from redis0's configuration.
    stack.ports_file.unlink()
    stack.redis[0].dir.mkdir(parents=True)
    stack.redis[0].conf.write_text("bind 127.0.0.1\nport 24101\n")
    assert stack.recorded_base() == 24000
    stack.redis[0].conf.write_text("bind 127.0.0.1\nport 25101\n")
    assert stack.recorded_base() == 25000


def test_a_server_that_does_not_answer_is_reported_with_the_end_of_its_log(tmp_path: Path) -> None:
    """What CI shows when a server of the stack fails: its log's last lines, not only where the log was."""
    log = tmp_path / "sentinel1.log"
    refused = "# Could not create server TCP listening socket 127.0.0.1:37262: bind: Address already in use\n"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + refused)
    with pytest.raises(StackError, match=r"(?s)the process exited.*line 99\n# Could not create server TCP") as err:
        wait_until(lambda: False, "sentinel1 on port 37262", 60, log_file=log, alive=lambda: False)
    assert "line 10\n" not in str(err.value)  # the end of the log, not all of it
    with pytest.raises(StackError, match=r"(?s)did not answer within 0s.*Address already in use"):
        wait_until(lambda: False, "sentinel1 on port 37262", 0.1, log_file=log)
