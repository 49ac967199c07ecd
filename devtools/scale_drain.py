"""The scale drain (issue 24): a backlog of readings drained while the ingest workers are scaled
4 -> 1 -> 3, two of them killed with SIGKILL in the middle, one stopped as an autoscaler would.

Used by the slow test (tests/ingest/test_slots.py, a smaller backlog) and by ``bench/scale_drain.py``
(200,000 readings). Real processes all through: ``paygo ingest run`` workers on the local broker and
database; the whole backlog (QoS 1, one full reading a message) is queued in the slots' sessions
before the workers drain it.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

import protocol
from backoffice import clock
from backoffice.config import Settings
from backoffice.registry import repository as registry
from backoffice.registry import service
from ingest import repository
from protocol import Reading

UNITS = 200


@dataclass
class DrainResult:
    readings: int
    stored: int = 0
    distinct: int = 0
    daily_reports: int = 0
    rejects: int = 0
    seconds: float = 0.0
    phases: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.readings - self.distinct

    @property
    def duplicated(self) -> int:
        return self.stored - self.distinct + max(0, self.daily_reports - self.distinct)


def _serial(i: int) -> str:
    return f"S{i:05d}"


def register_units(settings: Settings, conn: psycopg.Connection, units: int) -> None:
    product = registry.insert_product(conn, code="SCALE", name="scale", business_model="flexible", currency="KES",
                                      price_per_day=3500)  # fmt: skip
    installed = clock.utc_now() - timedelta(days=60)
    for i in range(units):
        service.register_unit(conn, settings.secret_key, _serial(i), product, installed_at=installed)
    conn.commit()


def backlog(settings: Settings, readings: int, units: int) -> list[tuple[str, bytes]]:
    """One reading per message, every field of the wire contract, 20 minutes apart per unit, in the past."""
    per_unit = math.ceil(readings / units)
    t0 = clock.utc_now().replace(second=0, microsecond=0) - timedelta(minutes=20 * (per_unit + 3))
    out = []
    for n in range(readings):
        unit, seq = n % units, n // units + 1
        serial = _serial(unit)
        r = Reading(seq=seq, ts=t0 + timedelta(minutes=20 * seq), batt_v=12.7, batt_a=-0.4, soc=0.61,
                    batt_temp_c=29.5, pv_v=17.9, pv_w=41.0, pv_wh=13.6, load_wh=4.2, credit_s=86_400 * 3,
                    locked=False, rssi=-71, fw="2.4.1")  # fmt: skip
        out.append((protocol.topic(serial, "telemetry", settings.mqtt_topic_root),
                    protocol.encode_telemetry(serial, [r])))  # fmt: skip
    return out


def start_worker(settings: Settings, worker_id: str, group: str, lease_s: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PAYGO_DATABASE_URL": settings.database_url,
           "PAYGO_MQTT_TOPIC_ROOT": settings.mqtt_topic_root, "PAYGO_LOG_LEVEL": "WARNING",
           "PAYGO_INGEST_GROUP": group, "PAYGO_INGEST_LEASE_SECONDS": str(lease_s),
           "PAYGO_INGEST_SLOTS": str(settings.ingest_slots)}  # fmt: skip
    if settings.environment != "development":
        env["PAYGO_ENVIRONMENT"] = settings.environment
    return subprocess.Popen([sys.executable, "-m", "paygo.cli", "ingest", "run", "--worker-id", worker_id], env=env)


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = clock.monotonic() + timeout
    while not check():
        if clock.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _count(conn: psycopg.Connection) -> int:
    conn.rollback()
    row = conn.execute("select count(*) from telemetry").fetchone()
    return int(row[0]) if row else 0


def _holders(conn: psycopg.Connection) -> dict[str, list[int]]:
    conn.rollback()
    out: dict[str, list[int]] = {}
    for lease in repository.slot_leases(conn):
        if lease.holder is not None and not lease.lapsed:
            out.setdefault(lease.holder, []).append(lease.slot)
    return out


def drain(
    settings: Settings,
    conn: psycopg.Connection,
    readings: int,
    units: int = UNITS,
    lease_s: float = 4.0,
    say: Callable[[str], None] = lambda s: None,
    timeout: float = 900.0,
    kill_at: float = 0.2,
) -> DrainResult:
    """Register the units; start 4 workers so that the slots' sessions exist, stop them; queue the
    whole backlog at the broker; start the 4 again, kill two (-9) and stop one once ``kill_at`` of it
    is stored, start two more once the last one holds every slot, wait for every reading."""
    result = DrainResult(readings)
    group = f"scale{uuid.uuid4().hex[:8]}"
    register_units(settings, conn, units)
    messages = backlog(settings, readings, units)
    started = clock.monotonic()

    def note(text: str) -> None:
        line = f"{clock.monotonic() - started:7.1f}s  stored {_count(conn):>8,}  {text}"
        result.phases.append(line)
        say(line)

    workers: dict[str, subprocess.Popen[bytes]] = {}
    slots = settings.ingest_slots
    try:
        for i in range(4):
            workers[f"w{i}"] = start_worker(settings, f"w{i}", group, lease_s)
        _wait(lambda: sum(len(s) for s in _holders(conn).values()) == slots and len(_holders(conn)) == 4, 60,
              "4 workers holding every slot")  # fmt: skip
        time.sleep(2.0)  # the slots' sessions connect and subscribe (a SUBACK we cannot see from here)
        for proc in workers.values():  # away: their slots' sessions stay on the broker and queue
            proc.send_signal(signal.SIGTERM)
        for proc in workers.values():
            proc.wait(60)
        note(f"the {slots} slots' sessions exist; every worker stopped")

        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{group}",
                                protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        publisher.max_inflight_messages_set(1000)
        publisher.max_queued_messages_set(0)
        publisher.connect(settings.mqtt_host, settings.mqtt_port)
        publisher.loop_start()
        # In chunks: paho's packet ids wrap at 65,535, so no more than that may wait at once.
        for first in range(0, len(messages), 20_000):
            infos = [publisher.publish(t, p, qos=1) for t, p in messages[first : first + 20_000]]
            for info in infos:
                info.wait_for_publish(600)
        publisher.loop_stop()
        publisher.disconnect()
        note(f"the backlog: {readings:,} readings queued at the broker")

        for i in range(4):
            workers[f"w{i}"] = start_worker(settings, f"w{i}", group, lease_s)
        _wait(lambda: _count(conn) >= readings * kill_at, timeout, f"{kill_at:.0%} of the backlog stored")
        note(f"4 workers draining: {_holders(conn)}")
        for name in ("w0", "w1"):
            workers[name].send_signal(signal.SIGKILL)
        workers["w2"].send_signal(signal.SIGTERM)  # scaled down: gives its slots back
        for name in ("w0", "w1", "w2"):
            workers[name].wait(60)
        note("killed w0, w1 (SIGKILL) and stopped w2 (SIGTERM): 1 worker left")
        _wait(lambda: _holders(conn) == {"w3": list(range(slots))}, 120, "w3 holding every slot")
        note(f"w3 took every slot over: {_holders(conn)}")
        for name in ("w4", "w5"):
            workers[name] = start_worker(settings, name, group, lease_s)
        _wait(lambda: len(_holders(conn)) == 3, 120, "3 workers sharing the slots")
        note(f"scaled up to 3 workers: {_holders(conn)}")
        _wait(lambda: _count(conn) >= readings, timeout, "every reading stored")
        note("every reading stored")
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    result.seconds = clock.monotonic() - started
    conn.rollback()
    row = conn.execute(
        """select (select count(*) from telemetry),
                  (select count(*) from (select distinct unit_id, seq from telemetry) d),
                  (select coalesce(sum(reports), 0) from telemetry_daily),
                  (select count(*) from ingest_rejects)"""
    ).fetchone()
    assert row is not None
    result.stored, result.distinct, result.daily_reports, result.rejects = (int(v) for v in row)
    return result
