"""The ingest consumer: a worker against the real broker and database, and the batches it makes of
raw messages (good ones stored, bad ones refused with the reason)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

import protocol
from backoffice import clock
from backoffice.config import Settings
from backoffice.registry import repository, service
from ingest.consumer import IngestWorker
from ingest.dbside import RawMessage, to_batch
from protocol import Reading
from tests.support import count, ingest_worker_thread, wait_for

SERIALS = ["W1", "W2", "W3"]


@pytest.fixture
def units(conn: psycopg.Connection) -> dict[str, int]:
    product = repository.insert_product(
        conn, code="P", name="p", business_model="flexible", currency="KES", price_per_day=3500
    )
    installed = clock.utc_now() - timedelta(days=60)
    ids = {s: service.register_unit(conn, "k", s, product, installed_at=installed) for s in SERIALS}
    conn.commit()
    return ids


@pytest.fixture
def worker(settings: Settings, units: dict[str, int]) -> Iterator[IngestWorker]:
    """A worker in a thread, yielded once the broker has acknowledged its subscriptions (SUBACK)."""
    with ingest_worker_thread(settings, "test") as w:
        yield w


@pytest.fixture
def publisher(settings: Settings) -> Iterator[mqtt.Client]:
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"pub-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    c.connect(settings.mqtt_host, settings.mqtt_port)
    c.loop_start()
    yield c
    c.disconnect()
    c.loop_stop()


def test_readings_are_stored_once_and_bad_messages_become_dead_letters(
    settings: Settings, conn: psycopg.Connection, worker: IngestWorker, publisher: mqtt.Client
) -> None:
    root = settings.mqtt_topic_root
    t0 = clock.utc_now() - timedelta(days=3)  # late readings are accepted
    messages = []
    for serial in SERIALS:
        for i in range(20):
            readings = [
                Reading(seq=2 * i + k, ts=t0 + timedelta(minutes=20 * (2 * i + k)), soc=0.5, batt_v=12.8)
                for k in (1, 2)
            ]
            messages.append((protocol.topic(serial, "telemetry", root), protocol.encode_telemetry(serial, readings)))
    # The whole backlog twice, the second time in reverse order: a store-and-forward resend.
    for topic, payload in messages + messages[::-1]:
        publisher.publish(topic, payload, qos=1).wait_for_publish(10)

    future = protocol.encode_telemetry("W1", [Reading(seq=999, ts=clock.utc_now() + timedelta(days=2))])
    bad = [
        (protocol.topic("W1", "telemetry", root), b'{"v": 1, "serial": '),
        (
            protocol.topic("NOPE", "telemetry", root),
            protocol.encode_telemetry("NOPE", [Reading(seq=1, ts=t0)]),
        ),
        (protocol.topic("W2", "telemetry", root), protocol.encode_telemetry("W3", [Reading(seq=1, ts=t0)])),
        (protocol.topic("W1", "telemetry", root), future),
    ]
    for topic, payload in bad:
        publisher.publish(topic, payload, qos=1).wait_for_publish(10)

    wait_for(lambda: count(conn, "select count(*) from ingest_rejects") == len(bad))
    wait_for(lambda: count(conn, "select count(*) from telemetry") == len(SERIALS) * 40)
    assert count(conn, "select count(*) from (select distinct unit_id, seq from telemetry) d") == len(SERIALS) * 40
    rejects = conn.execute("select topic, reason, payload from ingest_rejects order by id").fetchall()
    by_payload = {bytes(p): (t, r) for t, r, p in rejects}
    assert set(by_payload) == {p for _, p in bad}
    reasons = " | ".join(r for _, r in by_payload.values())
    for expected in ("invalid JSON", "unknown serial 'NOPE'", "differs from topic serial", "in the future"):
        assert expected in reasons
    # The newest reading of each unit is kept for look-ups.
    latest = conn.execute("select unit_id, seq from unit_latest order by unit_id").fetchall()
    assert [seq for _, seq in latest] == [40, 40, 40]
    assert worker.committed_readings == len(SERIALS) * 40


def test_status_of_a_message_from_the_wrong_topic_root_is_refused(settings: Settings) -> None:
    raw = json.dumps({"v": 1, "serial": "W1", "readings": [{"seq": 1, "ts": "2024-01-01T00:00:00Z"}]}).encode()
    batch = to_batch(
        [RawMessage("elsewhere/W1/telemetry", raw, clock.utc_now())],
        lambda s: (1, datetime(2020, 1, 1, tzinfo=UTC)),
        clock.utc_now(),
        settings.mqtt_topic_root,
    )
    assert batch.rows == [] and "topic outside" in batch.rejects[0][3]


def test_online_and_offline_from_the_status_topic_and_the_last_will(
    settings: Settings, conn: psycopg.Connection, worker: IngestWorker
) -> None:
    root = settings.mqtt_topic_root
    status = protocol.topic("W2", "status", root)
    unit = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="W2-link", protocol=MQTTProtocolVersion.MQTTv5)
    unit.will_set(status, b"offline", qos=1, retain=True)
    unit.connect(settings.mqtt_host, settings.mqtt_port, keepalive=5)
    unit.loop_start()
    unit.publish(status, b"online", qos=1, retain=True).wait_for_publish(10)

    def presence() -> tuple[bool, ...] | None:
        conn.rollback()
        row = conn.execute(
            "select p.online from unit_presence p join units u on u.id = p.unit_id where u.serial = 'W2'"
        ).fetchone()
        return None if row is None else tuple(row)

    wait_for(lambda: presence() == (True,), timeout=20, what="W2 online")
    unit.loop_stop()
    unit.socket().close()  # the GSM link drops: no DISCONNECT, so the broker publishes the last will
    wait_for(lambda: presence() == (False,), timeout=30, what="W2 offline by its last will")
    summary = repository.get_unit(conn, "W2")
    assert summary is not None and summary.online is False and summary.online_since is not None
    # A status message that is neither is a dead letter like any other bad message.
    bad = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    bad.connect(settings.mqtt_host, settings.mqtt_port)
    bad.loop_start()
    bad.publish(protocol.topic("W1", "status", root), b"sleepy", qos=1).wait_for_publish(10)
    bad.loop_stop()
    bad.disconnect()
    wait_for(lambda: count(conn, "select count(*) from ingest_rejects where reason like 'status%'") == 1, timeout=20,
             what="the dead letter")  # fmt: skip


def test_events_round_trip_and_bad_events_say_why() -> None:
    when = datetime(2024, 6, 1, 12, tzinfo=UTC)
    lost = protocol.DeviceEvent(kind="buffer_overflow", ts=when, detail={"dropped": 7})
    good = protocol.encode_events("SHS1", [protocol.DeviceEvent(kind="tamper", ts=when), lost])
    assert [e.kind for e in protocol.parse_events(good, "SHS1").events] == ["tamper", "buffer_overflow"]
    future = protocol.encode_events("SHS1", [protocol.DeviceEvent(kind="boot", ts=datetime(2099, 1, 1, tzinfo=UTC))])
    unknown = json.dumps({"v": 1, "serial": "SHS1", "events": [{"kind": "exploded", "ts": "2024-06-01T12:00:00Z"}]})
    now = datetime(2024, 6, 2, tzinfo=UTC)
    msgs = [RawMessage(f"paygo/v1/units/SHS1/{t}", p, now) for t, p in
        [("events", good), ("events", future), ("events", unknown.encode()), ("events", b"{")]]  # fmt: skip
    batch = to_batch(msgs, lambda s: (1, datetime(2020, 1, 1, tzinfo=UTC)), now)
    assert [(e[2], e[3]) for e in batch.events] == [("tamper", {}), ("buffer_overflow", {"dropped": 7})]
    reasons = [r[3] for r in batch.rejects]
    assert len(reasons) == 3 and "in the future" in reasons[0]
    assert "schema violation: events.0.kind" in reasons[1] and "invalid JSON" in reasons[2]
