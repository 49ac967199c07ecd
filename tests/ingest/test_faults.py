"""Faults with real processes: an ingest worker killed with SIGKILL in the middle of a stream, and
the broker restarted while readings wait for a worker. Nothing is lost and nothing is stored twice."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

import protocol
from backoffice import clock
from backoffice.config import Settings
from backoffice.registry import repository, service
from devtools.stack import Mosquitto
from protocol import Reading
from tests.support import count, ingest_worker, stop_process, wait_for

UNITS = [f"F{i:03d}" for i in range(20)]
STORED = "select count(*) from telemetry"
# Readings 20 minutes apart, up to 300 per unit, all in the past (and the same timestamps on every
# call: a reading sent again is the same reading).
T0 = clock.utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(days=5)


@pytest.fixture
def units(settings: Settings, conn: psycopg.Connection) -> None:
    product = repository.insert_product(conn, code="P", name="p", business_model="flexible", currency="KES",
                                        price_per_day=3500)  # fmt: skip
    installed = clock.utc_now() - timedelta(days=30)
    for serial in UNITS:
        service.register_unit(conn, settings.secret_key, serial, product, installed_at=installed)
    conn.commit()


@pytest.fixture
def publisher(settings: Settings) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}",
                         protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
    client.max_inflight_messages_set(200)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


def _messages(settings: Settings, start: int, count: int) -> list[tuple[str, bytes]]:
    t0 = T0
    out = []
    for n in range(start, start + count):
        serial = UNITS[n % len(UNITS)]
        seq = n // len(UNITS) + 1
        reading = Reading(seq=seq, ts=t0 + timedelta(minutes=20 * seq), soc=0.5, batt_v=12.7)
        out.append((protocol.topic(serial, "telemetry", settings.mqtt_topic_root),
                    protocol.encode_telemetry(serial, [reading])))  # fmt: skip
    return out


def _publish(client: mqtt.Client, messages: list[tuple[str, bytes]]) -> None:
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(30)


def _wait_subscribed(settings: Settings, conn: psycopg.Connection, publisher: mqtt.Client) -> None:
    """Until the worker is subscribed: the first reading, sent again until it is stored (the same
    reading each time, so it is stored once)."""
    wait_for(lambda: _publish(publisher, _messages(settings, 0, 1)) is None and count(conn, STORED) == 1, timeout=60,
             what="the worker's first reading")  # fmt: skip


def test_worker_killed_mid_stream_loses_nothing(
    settings: Settings, conn: psycopg.Connection, units: None, publisher: mqtt.Client
) -> None:
    worker_id = f"kill-{uuid.uuid4().hex[:6]}"
    first = ingest_worker(settings, worker_id)
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait_subscribed(settings, conn, publisher)
        stream = _messages(settings, 1, 5999)

        def steady() -> None:  # about 2,000 messages a second, so the kill lands mid-stream
            for i in range(0, len(stream), 100):
                _publish(publisher, stream[i : i + 100])
                time.sleep(0.05)  # pacing the sender (the stream's rate is part of the test), not a wait

        sender = threading.Thread(target=steady)
        sender.start()
        wait_for(lambda: count(conn, STORED) >= 500, timeout=60, what="some readings committed")
        first.send_signal(signal.SIGKILL)  # batches received, some not yet committed or acknowledged
        first.wait(10)
        sender.join(120)
        assert count(conn, STORED) < 6000, "the worker finished before it could be killed"
        second = ingest_worker(settings, worker_id)  # the same id: its persistent session and queue
        wait_for(lambda: count(conn, STORED) == 6000, timeout=120, what="every reading after the restart")
        distinct = conn.execute("select count(*) from (select distinct unit_id, seq from telemetry) d").fetchone()
        assert distinct == (6000,)
        assert conn.execute("select sum(reports) from telemetry_daily").fetchone() == (6000,)  # counted once
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)


def test_broker_restart_keeps_queued_readings(
    settings: Settings, conn: psycopg.Connection, units: None, publisher: mqtt.Client
) -> None:
    worker_id = f"brk-{uuid.uuid4().hex[:6]}"
    worker = ingest_worker(settings, worker_id)
    try:
        _wait_subscribed(settings, conn, publisher)
        stop_process(worker)  # away: its session stays on the broker
        _publish(publisher, _messages(settings, 1, 499))
        broker = Mosquitto(settings)
        broker.down()  # a clean stop writes the persistence file
        broker.up()
        worker = ingest_worker(settings, worker_id)
        wait_for(lambda: count(conn, STORED) == 500, timeout=120, what="the readings queued across the restart")
    finally:
        stop_process(worker)


def test_postgres_restart_mid_stream_loses_nothing(
    settings: Settings, conn: psycopg.Connection, units: None, publisher: mqtt.Client
) -> None:
    from devtools.stack import Postgres

    worker = ingest_worker(settings, f"pg-{uuid.uuid4().hex[:6]}")
    try:
        _wait_subscribed(settings, conn, publisher)
        conn.close()
        stream = _messages(settings, 1, 3999)
        sent = [0]
        database_down = threading.Event()

        def steady() -> None:
            for i in range(0, len(stream), 100):
                if i == 3000:  # the last thousand readings only once the database is away
                    database_down.wait(120)
                _publish(publisher, stream[i : i + 100])
                sent[0] = i + 100
                time.sleep(0.05)  # pacing the sender (about 2,000 a second), not a wait

        sender = threading.Thread(target=steady)
        sender.start()
        database = Postgres(settings)
        try:
            wait_for(lambda: sent[0] >= 1000, timeout=60, what="the stream under way")
            database.down()  # the worker's batches fail; it keeps the messages unacknowledged and retries
            database_down.set()
            wait_for(lambda: sent[0] >= 3500, timeout=60, what="readings sent while the database is away")
        finally:
            database_down.set()
            database.up()
        sender.join(120)
        with psycopg.connect(settings.database_url) as again:
            wait_for(
                lambda: count(again, STORED) == 4000, timeout=120, what="every reading after the database came back"
            )
            distinct = again.execute("select count(*) from (select distinct unit_id, seq from telemetry) d").fetchone()
            assert distinct == (4000,)
    finally:
        stop_process(worker)
