"""The local stack on a home and ports of its own, so the shared test stack is left alone."""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from backoffice.config import load_settings
from devtools.stack import Redis, Stack, StackError
from tests.support import free_port, wait_for


def _own_settings(home: Path):  # type: ignore[no-untyped-def]
    ports = {"pg_port": free_port(), "mqtt_port": free_port(), "redis_port": free_port(),
             "device_mqtt_port": free_port()}  # fmt: skip
    home.mkdir(parents=True, exist_ok=True)
    (home / "ports").write_text(json.dumps(ports))  # for the clean-up in own_home
    return load_settings(home=home, **ports)


def _own_settings_from(ports_file: Path):  # type: ignore[no-untyped-def]
    return load_settings(home=ports_file.parent, **json.loads(ports_file.read_text()))


@pytest.fixture
def own_home(tmp_path: Path) -> Iterator[Path]:
    """A home of its own; whatever a test started there is stopped afterwards, even if it failed."""
    home = tmp_path / "home"
    yield home
    settings_file = home / "ports"
    if settings_file.exists():
        Stack(_own_settings_from(settings_file)).down()


def test_up_is_idempotent_and_down_leaves_no_process(own_home: Path) -> None:
    stack = Stack(_own_settings(own_home))
    assert stack.up() == ["postgres", "mosquitto", "redis"]
    pids = [s.pid for s in stack.status()]
    assert all(pid is not None and psutil.pid_exists(pid) for pid in pids)
    assert stack.up() == []  # second up does nothing
    assert [s.pid for s in stack.status()] == pids
    assert stack.down() == ["redis", "mosquitto", "postgres"]

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    assert all(gone(pid) for pid in pids if pid is not None)
    assert {s.state for s in stack.status()} == {"stopped"}


def test_a_stale_pid_file_is_recovered(own_home: Path) -> None:
    redis = Redis(_own_settings(own_home))
    redis.dir.mkdir(parents=True)
    # A pid that belongs to a live process that is not redis (pid reuse after a crash).
    redis.pid_file.write_text(f"{os.getpid()}\n")
    assert not redis.running()
    try:
        assert redis.up() is True
        assert redis.running() and redis.pid() != os.getpid()
    finally:
        redis.down()


def test_a_taken_port_names_the_port_and_the_setting(own_home: Path) -> None:
    settings = _own_settings(own_home)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.redis_port))
        squatter.listen()
        with pytest.raises(StackError) as info:
            Stack(settings).up()
        assert str(settings.redis_port) in str(info.value)
        assert "PAYGO_REDIS_PORT" in str(info.value)
        # Nothing was half-started.
        assert {s.state for s in Stack(settings).status() if s.name != "redis"} == {"stopped"}

        env = {
            **os.environ,
            "PAYGO_HOME": str(own_home),
            "PAYGO_PG_PORT": str(settings.pg_port),
            "PAYGO_MQTT_PORT": str(settings.mqtt_port),
            "PAYGO_REDIS_PORT": str(settings.redis_port),
            "PAYGO_DEVICE_MQTT_PORT": str(settings.device_mqtt_port),
        }
        cli = subprocess.run(
            [sys.executable, "-m", "paygo.cli", "stack", "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 2
        assert f"port {settings.redis_port}" in cli.stderr and "PAYGO_REDIS_PORT" in cli.stderr


def _logs_in(port: int, login: tuple[str, str]) -> bool:
    """Whether the broker accepts this login (its CONNACK), on the services listener."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    answered, accepted = threading.Event(), []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(*login)
    client.on_connect = lambda c, u, f, reason, p: (accepted.append(not reason.is_failure), answered.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        answered.wait(10)
        return bool(accepted and accepted[0])
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_running_broker_gets_the_service_logins_of_a_new_secret_key(own_home: Path) -> None:
    from devtools.stack import Mosquitto

    settings = _own_settings(own_home)
    assert Mosquitto(settings).up() is True
    assert _logs_in(settings.mqtt_port, settings.service_login("ingest"))
    rotated = settings.model_copy(update={"secret_key": "another-local-key-for-this-test-only-0123456789"})
    assert not _logs_in(settings.mqtt_port, rotated.service_login("ingest"))
    assert Mosquitto(rotated).up() is False  # it was running: not restarted, given the new logins
    wait_for(lambda: _logs_in(settings.mqtt_port, rotated.service_login("ingest")), timeout=10,
             what="the new ingest login")  # fmt: skip
