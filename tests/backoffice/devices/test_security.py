"""Device security on the real broker: every unit logs in with its own credentials on the device
listener, and the ACL keeps it to its own topics — a message forged for another unit never reaches
the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

import protocol
from backoffice import clock
from backoffice.config import Settings
from backoffice.devices import broker as broker_admin
from backoffice.devices import service as devices
from backoffice.registry import repository, service
from devtools.stack import Mosquitto
from ingest.consumer import IngestWorker
from protocol import Reading
from tests.support import Subacks, count, ingest_worker_thread, wait_for


@pytest.fixture
def provisioned(settings: Settings, conn: psycopg.Connection) -> dict[str, str]:
    product = repository.insert_product(conn, code="P", name="p", business_model="flexible", currency="KES",
                                        price_per_day=3500)  # fmt: skip
    installed = clock.utc_now() - timedelta(days=30)
    for serial in ("UNIT-A", "UNIT-B"):
        service.register_unit(conn, settings.secret_key, serial, product, installed_at=installed)
    passwords = devices.provision(conn, settings.secret_key)
    conn.commit()
    # The device listener's dynamic-security plugin learns the logins, each unit with a role of its own topics.
    assert devices.write_password_file(conn, Mosquitto(settings).password_file) == 2
    logins = devices.broker_logins(conn, settings.secret_key)
    assert broker_admin.sync(settings, logins, reset=[s for s, _ in logins]).startswith("the broker's device listener")
    for serial in ("UNIT-A", "UNIT-B"):  # the broker has re-read it once the new passwords log in
        wait_for(lambda s=serial: _logs_in(settings, s, passwords[s]), timeout=20, what=f"{serial}'s login")
    return passwords


def _logs_in(settings: Settings, serial: str, password: str) -> bool:
    device = Device(settings, serial, password)
    device.close()
    return device.connack is not None and not device.connack.is_failure


@pytest.fixture
def worker(settings: Settings, provisioned: dict[str, str]) -> Iterator[IngestWorker]:
    """A worker in a thread, yielded once the broker has acknowledged its subscriptions (SUBACK)."""
    with ingest_worker_thread(settings, "sec") as w:
        yield w


class Device:
    """A unit's MQTT v5 connection on the device listener, recording the broker's answers."""

    def __init__(self, settings: Settings, serial: str, password: str, port: int | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{serial}-{uuid.uuid4().hex[:6]}",
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        self.client.username_pw_set(serial, password)
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks = Subacks(self.client)
        self.client.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc)
        self.client.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc)
        self.client.connect("127.0.0.1", port or settings.device_mqtt_port)
        self.client.loop_start()
        wait_for(lambda: self.connack is not None, timeout=10, what="CONNACK")

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.pubacks, timeout=10, what="PUBACK")
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_unit_a_cannot_publish_as_unit_b(
    settings: Settings, conn: psycopg.Connection, provisioned: dict[str, str], worker: IngestWorker
) -> None:
    root = settings.mqtt_topic_root
    t0 = clock.utc_now() - timedelta(hours=1)
    a = Device(settings, "UNIT-A", provisioned["UNIT-A"])
    try:
        assert not a.connack.is_failure  # type: ignore[union-attr]
        forged = a.publish(protocol.topic("UNIT-B", "telemetry", root),
                           protocol.encode_telemetry("UNIT-B", [Reading(seq=1, ts=t0, soc=0.1)]))  # fmt: skip
        assert forged.is_failure and forged.getName() == "Not authorized"
        own = a.publish(protocol.topic("UNIT-A", "telemetry", root),
                        protocol.encode_telemetry("UNIT-A", [Reading(seq=1, ts=t0, soc=0.9)]))  # fmt: skip
        assert not own.is_failure
        # A may ask for B's commands, but the broker delivers it only its own (read access is checked
        # message by message).
        received: list[str] = []
        a.client.on_message = lambda c, u, msg: received.append(msg.topic)
        a.client.subscribe(protocol.topic("UNIT-B", "cmd", root), qos=1)
        a.client.subscribe(protocol.topic("UNIT-A", "cmd", root), qos=1)
        a.subacks.wait(2, timeout=10, what="SUBACKs")
        platform = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        platform.connect(settings.mqtt_host, settings.mqtt_port)  # the services' listener
        platform.loop_start()
        for serial in ("UNIT-B", "UNIT-A"):
            platform.publish(protocol.topic(serial, "cmd", root), b'{"type": "token"}', qos=1).wait_for_publish(10)
        platform.loop_stop()
        platform.disconnect()
        wait_for(lambda: bool(received), timeout=10, what="A's own command")
        # B's command went first, and the broker had routed or dropped it before it acknowledged it
        # (PUBACK): had it been let through to A, A would have received it before its own.
        assert received == [protocol.topic("UNIT-A", "cmd", root)]
    finally:
        a.close()

    # A's own reading arrives; nothing for B, not even a dead letter: the broker dropped it. The
    # forged reading was refused (PUBACK) before A's own was sent: had the broker let it through,
    # the worker would have received it first and committed it no later than A's.
    a_reading = "select count(*) from telemetry t join units u on u.id = t.unit_id where u.serial = 'UNIT-A'"
    wait_for(lambda: count(conn, a_reading) == 1, timeout=20, what="A's reading")
    by_unit = conn.execute(
        "select u.serial, count(*) from telemetry t join units u on u.id = t.unit_id group by 1"
    ).fetchall()
    assert by_unit == [("UNIT-A", 1)]
    assert count(conn, "select count(*) from ingest_rejects") == 0


def test_wrong_password_or_unknown_unit_is_refused(settings: Settings, provisioned: dict[str, str]) -> None:
    for user, password in (("UNIT-A", "not-the-password"), ("UNIT-Z", "whatever"), ("UNIT-A", provisioned["UNIT-B"])):
        device = Device(settings, user, password)
        device.close()
        assert device.connack is not None and device.connack.is_failure, (user, device.connack)


def test_password_file_holds_hashes_only(
    settings: Settings, conn: psycopg.Connection, provisioned: dict[str, str]
) -> None:
    text = Mosquitto(settings).password_file.read_text()
    assert all(p not in text for p in provisioned.values())
    assert all(line.split(":", 1)[1].startswith("$7$101$") for line in text.splitlines())
    assert devices.password(conn, settings.secret_key, "UNIT-A") == provisioned["UNIT-A"]
    assert devices.provision(conn, settings.secret_key) == {}  # already provisioned: nothing new


def test_service_roles_get_only_what_they_need(
    settings: Settings, conn: psycopg.Connection, provisioned: dict[str, str], worker: IngestWorker
) -> None:
    """On the services listener the ingest role only reads and the delivery role only sends
    commands: a leaked ingest password cannot forge a reading or a token command."""
    root = settings.mqtt_topic_root
    reading = protocol.encode_telemetry("UNIT-A", [Reading(seq=7, ts=clock.utc_now() - timedelta(hours=1))])
    ingest = Device(settings, *settings.service_login("ingest"), port=settings.mqtt_port)
    delivery = Device(settings, *settings.service_login("delivery"), port=settings.mqtt_port)
    try:
        assert not ingest.connack.is_failure and not delivery.connack.is_failure  # type: ignore[union-attr]
        for forger, kind in ((ingest, "telemetry"), (ingest, "cmd"), (delivery, "telemetry"), (delivery, "status")):
            answer = forger.publish(protocol.topic("UNIT-A", kind, root), reading)
            assert answer.is_failure and answer.getName() == "Not authorized", (kind, answer)
        assert not delivery.publish(protocol.topic("UNIT-A", "cmd", root), b'{"type": "token"}').is_failure
    finally:
        ingest.close()
        delivery.close()
    wrong = Device(settings, "ingest", "not-the-password", port=settings.mqtt_port)
    wrong.close()
    assert wrong.connack is not None and wrong.connack.is_failure
    # A marker the worker (logged in as ingest) does store, sent after every forgery was answered:
    # had the broker let one through, the worker would have received it first and stored it by the
    # time the marker is stored.
    marker = Device(settings, "UNIT-A", provisioned["UNIT-A"])
    try:
        assert not marker.publish(protocol.topic("UNIT-A", "status", root), b"online").is_failure
    finally:
        marker.close()
    wait_for(lambda: count(conn, "select count(*) from unit_presence") == 1, timeout=20, what="the marker stored")
    assert count(conn, "select count(*) from telemetry") == 0
    assert count(conn, "select count(*) from ingest_rejects") == 0
    text = Mosquitto(settings).services_password_file.read_text()
    assert settings.service_login("ingest")[1] not in text and text.startswith("ingest:$7$")
