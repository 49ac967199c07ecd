"""The MQTT ingest door under hostile input, with a real broker and database: no message from a
unit's own credentials stops a worker (each poison lands in ``ingest_rejects`` with its reason and
the readings around it are stored once), a message too large leaves a dead letter, a message that
kills the database process is dead-lettered after a bounded number of attempts, a write-time
failure costs only its own message, and a unit cannot take over a worker's or another unit's
session on the device listener. Hypothesis feeds the parsers random bytes and JSON, and the writer
generated readings down to the database.

The broker tests run a Mosquitto of their own, configured by ``devtools/mosquitto.py`` exactly as
``paygo stack up`` configures the local one: the shared broker may still run an older
configuration (``use_username_as_clientid`` is only read at start)."""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

import protocol
from backoffice import clock
from backoffice.config import Settings
from backoffice.devices import broker as broker_admin
from backoffice.devices import service as devices
from backoffice.inventory.receipt import ReceiptProblems, read_receipt
from backoffice.registry import repository, service
from devtools.mosquitto import MESSAGE_SIZE_LIMIT
from devtools.stack import Mosquitto
from ingest import writer
from ingest.consumer import MAX_ATTEMPTS
from ingest.dbside import DbSide, RawMessage, to_batch
from protocol import ProtocolError, Reading
from tests.ingest.crashing_dbside import CRASH
from tests.support import count, free_port, ingest_worker, stop_process, wait_for, wait_worker_subscribed
from tests.support.fuzz import record
from tests.support.mqtt import WatchedWorker, running

A, B = "HOST-A", "HOST-B"
T0 = clock.utc_now().replace(microsecond=0) - timedelta(days=2)


# ---- a broker of the test's own, units provisioned on it


@pytest.fixture
def broker(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a Mosquitto started for this test from devtools/mosquitto.py's configuration."""
    own = settings.model_copy(update={"home": tmp_path, "mqtt_port": free_port(), "device_mqtt_port": free_port(),
                                      "broker_password_file": None, "broker_pid_file": None})  # fmt: skip
    server = Mosquitto(own)
    server.up()
    try:
        yield own
    finally:
        server.down()


@pytest.fixture
def passwords(broker: Settings, conn: psycopg.Connection) -> dict[str, str]:
    """Units A and B registered 30 days ago, with device logins the broker has re-read."""
    product = repository.insert_product(conn, code="P", name="p", business_model="flexible", currency="KES",
                                        price_per_day=3500)  # fmt: skip
    for serial in (A, B):
        service.register_unit(conn, broker.secret_key, serial, product, installed_at=T0 - timedelta(days=28))
    issued = devices.provision(conn, broker.secret_key)
    conn.commit()
    # The device listener's dynamic-security plugin learns the logins, each unit with a role of its own topics.
    logins = devices.broker_logins(conn, broker.secret_key)
    assert broker_admin.sync(broker, logins, reset=[s for s, _ in logins]).startswith("the broker's device listener")
    for serial in (A, B):
        wait_for(lambda s=serial: _logs_in(broker, s, issued[s]), timeout=20, what=f"{serial}'s login")
    return issued


def _logs_in(settings: Settings, serial: str, password: str) -> bool:
    device = Device(settings, serial, password)
    device.close()
    return device.connack is not None and not device.connack.is_failure


class Device:
    """A unit's MQTT v5 connection on the device listener, recording the broker's answers and
    every disconnection it suffers."""

    def __init__(
        self, settings: Settings, serial: str, password: str, client_id: str | None = None, persistent: bool = False
    ) -> None:
        client_id = client_id or f"{serial}-{uuid.uuid4().hex[:6]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(serial, password)
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.disconnects = 0
        self.closing = False
        self.client.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc)
        self.client.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc)
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.__setitem__(mid, rcs)
        self.client.on_disconnect = self._on_disconnect
        # persistent: a session that outlives the connection (clean start off, expiring after a day)
        expiry = Properties(PacketTypes.CONNECT)
        expiry.SessionExpiryInterval = 86_400
        self.client.connect("127.0.0.1", settings.device_mqtt_port, clean_start=not persistent,
                            properties=expiry if persistent else None)  # fmt: skip
        self.client.loop_start()
        wait_for(lambda: self.connack is not None, timeout=10, what="CONNACK")

    def _on_disconnect(self, *args: Any) -> None:
        if not self.closing:
            self.disconnects += 1

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.pubacks, timeout=20, what="PUBACK")
        return self.pubacks[info.mid]

    def subscribe(self, topic_filter: str) -> ReasonCode:
        """The broker's answer (SUBACK reason code) to one subscription at QoS 1."""
        _, mid = self.client.subscribe(topic_filter, qos=1)
        wait_for(lambda: mid in self.subacks, timeout=20, what="SUBACK")
        return self.subacks[mid][0]

    def close(self) -> None:
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()


def _reading(serial: str, seq: int) -> bytes:
    ts = T0 + timedelta(minutes=20 * seq)
    return protocol.encode_telemetry(serial, [Reading(seq=seq, ts=ts, soc=0.5, batt_v=12.8, credit_s=3600, fw="2.1")])


def _telemetry(serial: str, reading: dict[str, Any]) -> bytes:
    """A telemetry message written by hand (the protocol's encoder would refuse to build a poison)."""
    body = {"v": 1, "serial": serial, "readings": [{"seq": 500, "ts": protocol.utc_iso(T0)} | reading]}
    return json.dumps(body, allow_nan=True).encode()


def _events(serial: str, detail: dict[str, Any]) -> bytes:
    body = {"v": 1, "serial": serial, "events": [{"kind": "token", "ts": protocol.utc_iso(T0), "detail": detail}]}
    return json.dumps(body, allow_nan=True).encode()


# ---- poison messages from a unit's own login


def test_poison_messages_from_a_unit_become_dead_letters_and_the_worker_lives_on(
    broker: Settings, conn: psycopg.Connection, passwords: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of these killed the worker, and killed it again after every restart (the broker
    redelivers what was not acknowledged)."""
    root = broker.mqtt_topic_root
    telemetry, events = protocol.topic(A, "telemetry", root), protocol.topic(A, "events", root)
    huge = _telemetry(A, {"fw": "x" * 1_000_000})[:1_000_000]  # 1 MB; its start is our JSON
    poisons = {
        "credit_s 2^63": (telemetry, _telemetry(A, {"credit_s": 2**63}), "credit_s: Input should be less than"),
        "fw with NUL": (telemetry, _telemetry(A, {"fw": "2.1\x00"}), "fw: Value error, contains a NUL character"),
        "event detail NaN": (events, _events(A, {"dropped": math.nan}), "detail 'dropped': not a finite number"),
        "event detail NUL": (events, _events(A, {"result": "accepted\x00"}), "contains a NUL character"),
        "extra key with NUL": (telemetry, _telemetry(A, {"x\x00": 1}), "readings.0.x\\x00: Extra inputs"),
        "1 MB": (telemetry, huge, "message of 1000000 bytes exceeds 262144"),
    }
    monkeypatch.setenv("PAYGO_MQTT_PORT", str(broker.mqtt_port))  # `paygo ingest run` on this test's broker
    worker = ingest_worker(broker, f"poison-{uuid.uuid4().hex[:6]}")
    unit = None
    try:
        wait_worker_subscribed(broker, conn, B)
        unit = Device(broker, A, passwords[A])
        seq = 1
        assert not unit.publish(telemetry, _reading(A, seq)).is_failure
        for topic, payload, _ in poisons.values():  # a good reading after each poison
            unit.publish(topic, payload)
            seq += 1
            assert not unit.publish(telemetry, _reading(A, seq)).is_failure
        wait_for(lambda: count(conn, "select count(*) from telemetry") == seq, timeout=60, what="every good reading")
        wait_for(lambda: count(conn, "select count(*) from ingest_rejects") == len(poisons), timeout=30,
                 what="a dead letter per poison")  # fmt: skip
        assert worker.poll() is None, "the worker exited"
    finally:
        if unit is not None:
            unit.close()
        stop_process(worker)
        assert worker.returncode == 0  # it stopped when told to, not before

    stored = conn.execute("select distinct seq, count(*) over (partition by seq) from telemetry order by 1").fetchall()
    assert stored == [(s, 1) for s in range(1, seq + 1)]  # each good reading once
    assert count(conn, "select sum(reports) from telemetry_daily") == seq
    rejects = conn.execute("select topic, serial, reason, payload from ingest_rejects order by id").fetchall()
    assert len(rejects) == len(poisons)
    for (name, (topic, payload, reason)), (r_topic, r_serial, r_reason, r_payload) in zip(
        poisons.items(), rejects, strict=True
    ):
        assert (r_topic, r_serial) == (topic, A), name
        assert reason in r_reason, (name, r_reason)
        kept = payload if len(payload) <= protocol.MAX_MESSAGE_BYTES else payload[:4096]
        assert bytes(r_payload) == kept, name  # the raw bytes, NUL and all


def test_the_broker_refuses_more_than_its_own_limit(broker: Settings, passwords: dict[str, str]) -> None:
    """Above MESSAGE_SIZE_LIMIT the broker itself refuses a message: Mosquitto 2.0 closes the
    sender's connection (so a unit cannot make the workers hold more than that)."""
    unit = Device(broker, A, passwords[A])
    try:
        unit.client.publish(
            protocol.topic(A, "telemetry", broker.mqtt_topic_root), b"x" * (MESSAGE_SIZE_LIMIT + 1), qos=1
        )
        wait_for(lambda: unit.disconnects > 0, timeout=20, what="the broker closing the connection")
        assert not unit.pubacks
    finally:
        unit.close()


# ---- a database process that dies on a message, a message the database refuses


class _Watched(WatchedWorker):
    """An ingest worker of its own group, flushing every 50 ms."""

    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, f"{prefix}-{uuid.uuid4().hex[:6]}", group=f"g{uuid.uuid4().hex[:8]}",
                         flush_seconds=0.05, session_expiry_s=5)  # fmt: skip


class _Crashing(_Watched):
    db_side_module = "tests.ingest.crashing_dbside"


def _unit(conn: psycopg.Connection, *serials: str) -> dict[str, int]:
    product = repository.insert_product(conn, code="P", name="p", business_model="flexible", currency="KES",
                                        price_per_day=3500)  # fmt: skip
    ids = {s: service.register_unit(conn, "k", s, product, installed_at=T0 - timedelta(days=28)) for s in serials}
    conn.commit()
    return ids


def test_a_message_that_kills_the_database_process_is_dead_lettered_after_bounded_attempts(
    settings: Settings, conn: psycopg.Connection
) -> None:
    _unit(conn, "C1")
    topic = protocol.topic("C1", "telemetry", settings.mqtt_topic_root)
    crash = _telemetry("C1", {"seq": 999, "fw": CRASH.decode()})  # a good reading, but it kills the process
    worker = _Crashing(settings, "crash")
    with running(worker) as thread:
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        pub.connect(settings.mqtt_host, settings.mqtt_port)
        pub.loop_start()
        try:
            batch = [_reading("C1", s) for s in range(1, 11)] + [crash] + [_reading("C1", s) for s in range(11, 21)]
            for info in [pub.publish(topic, payload, qos=1) for payload in batch]:  # one batch, or few
                info.wait_for_publish(10)
            wait_for(lambda: count(conn, "select count(*) from ingest_rejects") == 1, timeout=120,
                     what="the dead letter")  # fmt: skip
            wait_for(lambda: count(conn, "select count(*) from telemetry") == 20, timeout=30, what="the good readings")
            assert thread.is_alive()
            pub.publish(topic, _reading("C1", 21), qos=1).wait_for_publish(10)  # and the worker goes on
            wait_for(lambda: count(conn, "select count(*) from telemetry") == 21, timeout=30, what="a later reading")
        finally:
            pub.loop_stop()
            pub.disconnect()
    serial, reason, payload = conn.execute("select serial, reason, payload from ingest_rejects").fetchone()  # type: ignore[misc]
    assert f"failed {MAX_ATTEMPTS} times in the database process" in reason
    assert (serial, bytes(payload)) == ("C1", crash)
    assert count(conn, "select count(distinct seq) from telemetry") == 21  # each once


def test_a_message_that_fails_at_write_time_costs_only_itself(settings: Settings, conn: psycopg.Connection) -> None:
    """The database refuses one unit's rows (it was deleted after the worker cached it): the batch
    is written again in halves, that unit's messages become dead letters, the others are stored."""
    ids = _unit(conn, "D1", "D2", "D3")
    here, _there = Pipe()
    side = DbSide(settings, here)
    try:
        side.db()  # the worker's directory knows D3
        conn.execute("delete from units where id = %s", (ids["D3"],))
        conn.commit()
        now = clock.utc_now()
        root = settings.mqtt_topic_root
        messages = [RawMessage(protocol.topic(s, "telemetry", root), _reading(s, seq), now)
                    for seq in (1, 2, 3) for s in ("D1", "D3", "D2")]  # fmt: skip
        inserted, rejected, _ = side.commit(messages)
    finally:
        if side.conn is not None:
            side.conn.close()
    assert (inserted, rejected) == (6, 3)
    assert count(conn, "select count(*) from telemetry") == 6
    assert count(conn, "select count(*) from unit_latest") == 2
    rejects = conn.execute("select topic, serial, reason, payload from ingest_rejects order by id").fetchall()
    assert [(t, bytes(p)) for t, _, _, p in rejects] == [(m.topic, m.payload) for m in messages if "/D3/" in m.topic]
    assert all(s == "D3" and r.startswith("unprocessable: ForeignKeyViolation") for _, s, r, _ in rejects), rejects


# ---- the device listener: a unit is only itself


def test_a_unit_may_subscribe_to_its_own_commands_and_nothing_else(
    broker: Settings, conn: psycopg.Connection, passwords: dict[str, str]
) -> None:
    """Issue 22 finding 1: a unit's login subscribed to the ingest workers' shared subscription (SUBACK
    "Granted QoS 1") with a persistent session and left; the broker then handed it a share of every
    unit's readings, dropped on the read check after the senders had their PUBACK. Every subscription
    but a unit's own command topic is refused at SUBACK, and all of B's readings reach the database."""
    root = broker.mqtt_topic_root
    worker = _Watched(broker, "share")
    with running(worker):
        wait_worker_subscribed(broker, conn, B)
        a = Device(broker, A, passwords[A], client_id=A, persistent=True)
        try:
            refused = [
                protocol.shared_subscription(worker.group, "telemetry", root),
                protocol.shared_subscription("ingest", "telemetry", root),
                f"$share/{worker.group}/{protocol.topic(A, 'cmd', root)}",
                protocol.all_units("telemetry", root),
                protocol.all_units("cmd", root),
                protocol.topic(B, "cmd", root),
                protocol.topic(B, "telemetry", root),
                protocol.topic(A, "telemetry", root),
                f"{root}/#",
                "#",
                "+/+/+/+/+/+",
                "$SYS/#",
                "$CONTROL/dynamic-security/v1",
            ]
            for topic_filter in refused:
                answer = a.subscribe(topic_filter)
                assert answer.is_failure and answer.getName() == "Not authorized", (topic_filter, answer.getName())
            own = a.subscribe(protocol.topic(A, "cmd", root))
            assert not own.is_failure, own.getName()
        finally:
            a.close()
        # A's session lives on after it left: had a shared subscription been granted in it, the broker
        # would deal it a share of B's readings, and drop them.
        b = Device(broker, B, passwords[B])
        try:
            for seq in range(1, 21):
                assert not b.publish(protocol.topic(B, "telemetry", root), _reading(B, seq)).is_failure
        finally:
            b.close()
        wait_for(lambda: count(conn, "select count(*) from telemetry") == 20, timeout=30, what="B's 20 readings")
        conn.rollback()


def test_a_unit_cannot_take_over_a_workers_or_another_units_session(
    broker: Settings, conn: psycopg.Connection, passwords: dict[str, str]
) -> None:
    root = broker.mqtt_topic_root
    worker = _Watched(broker, "clientid")
    with running(worker):
        b = Device(broker, B, passwords[B], client_id=f"unit-{B}")  # as the simulator names it
        try:
            sent = {A: 0, B: 0}
            for stolen in (worker.client_id, f"unit-{B}", B):
                a = Device(broker, A, passwords[A], client_id=stolen)
                try:
                    assert a.connack is not None and not a.connack.is_failure, stolen
                    forged = a.publish(protocol.topic(B, "telemetry", root), _reading(B, 100))
                    assert forged.is_failure and forged.getName() == "Not authorized", stolen
                    sent[A] += 1
                    assert not a.publish(protocol.topic(A, "telemetry", root), _reading(A, sent[A])).is_failure
                finally:
                    a.close()
                # Had A's login taken B's session, the broker would have closed B's connection
                # before answering this publish on it.
                sent[B] += 1
                assert not b.publish(protocol.topic(B, "telemetry", root), _reading(B, sent[B])).is_failure
            by_unit = (
                "select u.serial, count(*) from telemetry t join units u on u.id = t.unit_id group by 1 order by 1"
            )
            wait_for(lambda: conn.execute(by_unit).fetchall() == [(A, 3), (B, 3)], timeout=30,
                     what="A's and B's own readings, and nothing forged")  # fmt: skip
            conn.rollback()
            # The worker received B's last reading after A's last login: a takeover would have
            # reached it first.
            assert worker.disconnects == 0
            assert b.disconnects == 0 and b.client.is_connected()
        finally:
            b.close()
    # The client id is the username: a second login of A replaces the first, whatever ids they send.
    first = Device(broker, A, passwords[A], client_id="first")
    second = Device(broker, A, passwords[A], client_id="second")
    try:
        wait_for(lambda: first.disconnects == 1, timeout=10, what="A's first session taken over by A")
        assert second.disconnects == 0
    finally:
        first.close()
        second.close()


# ---- generated input: the parsers refuse or accept, never fail; what they accept, the database takes

# Text as a unit may send it: any character, NUL and lone surrogates included.
ANY_TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"]), st.just("\x00")), max_size=40)
NUMBERS = st.one_of(st.floats(), st.floats(-300, 300), st.integers(-(2**70), 2**70), st.integers(-200, 5000))
INTS = st.one_of(st.integers(), st.integers(-(2**70), 2**70), st.integers(0, 10**7))
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=23, minutes=59))])
TIMES = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES).map(
        datetime.isoformat
    ),
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)).map(
        protocol.utc_iso
    ),
    st.datetimes(max_value=datetime(9999, 12, 30)).map(datetime.isoformat),  # no time zone
    ANY_TEXT,
    INTS,
    st.floats(),
)
LEAF = st.one_of(st.none(), st.booleans(), NUMBERS, ANY_TEXT)
JSON = st.recursive(LEAF, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ANY_TEXT, kids, max_size=4),
                    max_leaves=20)  # fmt: skip
MEASURES = ("batt_v", "batt_a", "soc", "batt_temp_c", "pv_v", "pv_w", "pv_wh", "load_wh")
READING = st.builds(
    lambda fixed, extra: fixed | extra,
    st.fixed_dictionaries(
        {"seq": INTS, "ts": TIMES},
        optional={
            **dict.fromkeys(MEASURES, NUMBERS),
            "credit_s": INTS,
            "locked": st.booleans() | NUMBERS,
            "rssi": INTS,
            "fw": ANY_TEXT,
        },  # fmt: skip
    ),
    st.dictionaries(ANY_TEXT, LEAF, max_size=1),
)
KINDS = st.sampled_from(["boot", "token", "tamper", "lvd", "reconnect", "buffer_overflow"])
# Within the protocol's ranges but at their edges: boundaries, subnormals, -0.0, the largest credit,
# odd (but storable) unicode, any time zone.
VALID_TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=32)
RANGES = {"batt_v": (0, 100), "batt_a": (-200, 200), "soc": (0, 1), "batt_temp_c": (-40, 120), "pv_v": (0, 200),
          "pv_w": (0, 5000), "pv_wh": (0, 100000), "load_wh": (0, 100000)}  # fmt: skip
RECENT = st.datetimes(
    min_value=clock.utc_now().replace(tzinfo=None) - timedelta(days=29),
    max_value=clock.utc_now().replace(tzinfo=None),
    timezones=st.just(UTC),
)
PLAUSIBLE_TIMES = st.builds(lambda ts, zone: ts.astimezone(zone).isoformat(), RECENT, ZONES)
PLAUSIBLE_READING = st.fixed_dictionaries(
    {"seq": st.integers(0, 2**62 - 1), "ts": PLAUSIBLE_TIMES},
    optional={
        **{name: st.floats(lo, hi) | st.integers(lo, hi) for name, (lo, hi) in RANGES.items()},
        "credit_s": st.integers(0, protocol.MAX_CREDIT_S),
        "locked": st.booleans(),
        "rssi": st.integers(-150, 0),
        "fw": VALID_TEXT,
    },  # fmt: skip
)
PLAUSIBLE_EVENT = st.fixed_dictionaries(
    {"kind": KINDS, "ts": PLAUSIBLE_TIMES},
    optional={"detail": st.dictionaries(
        st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=32),
        st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
                  VALID_TEXT),
        max_size=8)},
)  # fmt: skip
# A good reading or event with one field (or one extra key) set to a value of its kind at or beyond
# every limit: how a poison looks.
# (Hypothesis draws big integers and rare characters seldom on its own: they are asked for here.)
NASTY_TEXT = st.one_of(
    st.builds(lambda a, bad, b: a + bad + b, st.text(max_size=10),
              st.sampled_from(["\x00", "\x00", "\ud800", "\udfff"]), st.text(max_size=10)),
    ANY_TEXT,
)  # fmt: skip
BIG = st.one_of(
    st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 2**64, 2**32, 10**30]),
    st.integers(min_value=2**63),
    st.integers(max_value=-(2**63) - 1),
    st.floats(),
    st.integers(-(2**70), 2**70),
)
BAD_FIELD = {"seq": BIG, "ts": TIMES, "credit_s": BIG, "rssi": BIG, "fw": NASTY_TEXT, "locked": LEAF,
             **dict.fromkeys(MEASURES, BIG)}  # fmt: skip


def _with(good: dict[str, Any], key: str, bad: object) -> dict[str, Any]:
    return good | {key: bad}


ONE_BAD_READING = st.one_of(
    *(st.builds(_with, PLAUSIBLE_READING, st.just(field), bad) for field, bad in BAD_FIELD.items()),
    st.builds(_with, PLAUSIBLE_READING, NASTY_TEXT, LEAF),  # an extra key
)
ONE_BAD_EVENT = st.one_of(
    st.builds(_with, PLAUSIBLE_EVENT, st.just("ts"), TIMES),
    st.builds(lambda good, key, bad: good | {"detail": good.get("detail", {}) | {key: bad}}, PLAUSIBLE_EVENT,
              NASTY_TEXT | st.just("dropped"), BIG | NASTY_TEXT),
)  # fmt: skip
EVENT = st.fixed_dictionaries(
    {"kind": KINDS | ANY_TEXT,
     "ts": TIMES},
    optional={"detail": st.dictionaries(ANY_TEXT, LEAF, max_size=20)},
)  # fmt: skip


def _message(serial: str, key: str, items: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"v": st.sampled_from([1, 1, 1, 2, "1"]), "serial": st.just(serial) | ANY_TEXT,
                                  key: st.lists(items, min_size=1, max_size=3)})  # fmt: skip


def _valid(key: str, items: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"v": st.just(1), "serial": st.just("GEN"), key: st.lists(items, min_size=1, max_size=3)}
    )


def _dump(value: object, ascii_only: bool) -> bytes:
    """JSON as a unit might write it: NaN and Infinity included, surrogates escaped or raw."""
    return json.dumps(value, allow_nan=True, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _parse_all(payload: bytes, outcomes: Counter[str]) -> None:
    """Every device parser either accepts the payload or raises ProtocolError; nothing else."""
    outcomes["examples"] += 1
    parsers = {"telemetry": lambda: protocol.parse_telemetry(payload, "GEN"),
               "events": lambda: protocol.parse_events(payload, "GEN"),
               "status": lambda: protocol.parse_status(payload)}  # fmt: skip
    for name, parse in parsers.items():
        try:
            parse()
            outcomes[f"{name} accepted"] += 1
        except ProtocolError as err:
            assert "\x00" not in str(err)  # a reason is always storable as text
            outcomes[f"{name} refused"] += 1


def test_random_bytes_and_json_into_the_parsers_raise_only_protocol_errors() -> None:
    outcomes: Counter[str] = Counter()

    @hypothesis_settings(max_examples=600, deadline=None)
    @given(
        st.one_of(
            st.binary(max_size=300),
            st.builds(_dump, JSON, st.booleans()),
            st.builds(_dump, _message("GEN", "readings", READING), st.booleans()),
            st.builds(_dump, _message("GEN", "events", EVENT), st.booleans()),
            st.builds(_dump, _valid("readings", PLAUSIBLE_READING), st.booleans()),
            st.builds(_dump, _valid("events", PLAUSIBLE_EVENT), st.booleans()),
            st.builds(_dump, _valid("readings", ONE_BAD_READING), st.booleans()),
            st.builds(_dump, _valid("events", ONE_BAD_EVENT), st.booleans()),
        )
    )
    def check(payload: bytes) -> None:
        _parse_all(payload, outcomes)

    check()
    print(f"\nparsers: {dict(outcomes)}")  # noqa: T201 - the count of inputs tried, shown with -s
    examples = outcomes.pop("examples")
    record("parse_telemetry/parse_events/parse_status, random bytes and JSON", examples, outcomes)
    assert outcomes["telemetry accepted"] > 0 and outcomes["events accepted"] > 0
    assert outcomes["telemetry refused"] > 0 and outcomes["events refused"] > 0 and outcomes["status refused"] > 0


def test_generated_messages_are_refused_or_written_to_the_database(conn: psycopg.Connection) -> None:
    """Readings and events with extreme floats, big integers, odd unicode and any timestamp: each
    message is either refused (a dead letter, which the database takes too) or written by
    ingest/writer.py without an error. Each example is rolled back."""
    unit_id = _unit(conn, "GEN")["GEN"]
    created = conn.execute("select created_at from units where id = %s", (unit_id,)).fetchone()[0]  # type: ignore[index]
    conn.rollback()
    outcomes: Counter[str] = Counter()

    @hypothesis_settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.one_of(
            st.tuples(st.just("telemetry"), st.builds(_dump, _message("GEN", "readings", READING), st.booleans())),
            st.tuples(st.just("events"), st.builds(_dump, _message("GEN", "events", EVENT), st.booleans())),
            st.tuples(st.just("telemetry"), st.builds(_dump, _valid("readings", PLAUSIBLE_READING), st.booleans())),
            st.tuples(st.just("events"), st.builds(_dump, _valid("events", PLAUSIBLE_EVENT), st.booleans())),
            *[st.tuples(st.just("telemetry"), st.builds(_dump, _valid("readings", ONE_BAD_READING), st.booleans()))]
            * 4,
            *[st.tuples(st.just("events"), st.builds(_dump, _valid("events", ONE_BAD_EVENT), st.booleans()))] * 2,
        )  # (one bad field is how a poison looks: those most)
    )
    def check(message: tuple[str, bytes]) -> None:
        kind, payload = message
        raw = RawMessage(f"paygo/v1/units/GEN/{kind}", payload, clock.utc_now())
        batch = to_batch([raw], lambda s: (unit_id, created) if s == "GEN" else None, clock.utc_now())
        with conn.transaction(force_rollback=True):
            writer.write_readings(conn, batch.rows)
            writer.write_events(conn, batch.events)
            writer.write_rejects(conn, batch.rejects)
            stored = count(conn, "select (select count(*) from telemetry) + (select count(*) from unit_events)")
            assert (stored > 0) == bool(batch.rows or batch.events)  # (a message may repeat a reading)
        outcomes["refused" if batch.rejects else f"written {kind}"] += 1

    check()
    print(f"\nwriter: {dict(outcomes)}")  # noqa: T201 - the count of inputs tried, shown with -s
    record("generated telemetry and events into ingest/writer.py and PostgreSQL", sum(outcomes.values()), outcomes)
    assert outcomes["refused"] > 0 and outcomes["written telemetry"] > 0 and outcomes["written events"] > 0


def test_no_unit_is_received_registered_or_provisioned_under_a_services_client_id(
    broker: Settings, conn: psycopg.Connection, passwords: dict[str, str]
) -> None:
    """Issue 22 finding 4: a unit registered as ``ingest-<id>`` (or ``delivery-vm``) got a broker login after
    routine provisioning, and its login (client id = serial) took over the worker's session, wiping its
    queued readings. Serials and the services' client ids are disjoint: refused where units are received
    and registered, and never given a login (a row from before the rule included)."""
    product = conn.execute("select id from products where code = 'P'").fetchone()[0]  # type: ignore[index]
    reserved = ["ingest-w1", "delivery-vm", "INGEST-7", "paygo-broker-admin"]
    for serial in reserved:
        with pytest.raises(service.UnitSerialError, match="kept for the platform's services"):
            service.register_unit(conn, broker.secret_key, serial, product)
    csv = "serial,product\n" + "".join(f"{s},P\n" for s in reserved)
    with pytest.raises(ReceiptProblems) as refused:
        read_receipt(csv.encode(), {"P": product})
    assert len(refused.value.errors) == len(reserved)
    assert all("kept for the platform's services" in e for e in refused.value.errors)

    # A unit stored before the rule existed gets no login, whoever provisions.
    conn.execute("insert into units (serial, product_id) values ('ingest-old', %s)", (product,))
    assert devices.provision(conn, broker.secret_key) == {}
    logins = devices.broker_logins(conn, broker.secret_key)
    assert sorted(s for s, _ in logins) == [A, B]
    conn.commit()
    broker_admin.sync(broker, logins)
    worker = _Watched(broker, "w1")
    with running(worker):
        intruder = Device(broker, "ingest-old", "anything", client_id=worker.client_id)
        intruder.close()
        assert intruder.connack is not None and intruder.connack.is_failure
        assert worker.disconnects == 0
