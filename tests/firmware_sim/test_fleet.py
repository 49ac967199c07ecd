"""A short fleet run against the real broker and an ingest worker: every reading the units send
arrives exactly once, a GSM outage is bridged by the store-and-forward buffer, a full buffer drops
its oldest readings and says how many, and a unit that loses its link is marked offline."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta

import psycopg
import pytest

import protocol
from backoffice import clock as platform_clock
from backoffice.config import Settings
from backoffice.registry import repository, service
from firmware_sim import scenarios
from firmware_sim.clock import SimClock
from firmware_sim.fleet import FleetConfig, FleetStats, run_fleet
from firmware_sim.unit import UnitSpec
from tests.support import ingest_worker, stop_process, wait_for, wait_worker_subscribed

SPEED = 7200.0  # two simulated hours per real second: a reading every 0.17 s per unit
N = 16


@pytest.fixture
def specs(settings: Settings, conn: psycopg.Connection) -> list[UnitSpec]:
    product = repository.insert_product(conn, code="P", name="p", business_model="flexible", currency="KES",
                                        price_per_day=3500)  # fmt: skip
    installed = platform_clock.utc_now() - timedelta(days=30)
    out = []
    for i in range(N):
        serial = f"FL{i:03d}"
        service.register_unit(conn, settings.secret_key, serial, product, installed_at=installed)
        out.append(UnitSpec(serial, -1.0 + 0.1 * i, 36.0, 50, 20, "lifepo4"))
    conn.commit()
    return out


def _run(settings: Settings, specs: list[UnitSpec], a: scenarios.Assignment, clock: SimClock, seconds: float,
         buffer_limit: int) -> FleetStats:  # fmt: skip
    cfg = FleetConfig(settings.mqtt_host, settings.mqtt_port, topic_root=settings.mqtt_topic_root,
                      buffer_limit=buffer_limit, self_pay=True)  # fmt: skip
    stats = FleetStats()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(
        run_fleet(specs, clock, cfg, stop, stats, credit_days=30, assignment=a)))  # fmt: skip
    thread.start()
    try:
        wait_for(lambda: stats.online >= len(specs) - int(a.mask("migrates").sum()), timeout=30, what="units online")
        threading.Event().wait(seconds)  # the run itself (its scenarios play out), not a readiness wait
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
    assert not thread.is_alive()
    return stats


def _rows(conn: psycopg.Connection) -> dict[str, list[int]]:
    conn.rollback()
    seqs: dict[str, list[int]] = {}
    for serial, seq in conn.execute(
        "select u.serial, t.seq from telemetry t join units u on u.id = t.unit_id order by 1, 2"
    ):
        seqs.setdefault(serial, []).append(seq)
    return seqs


OUTAGE, OVERFLOW, GONE = [1, 2], 3, 4  # units without GSM for 3 h, for 30 h, and one that moves away


def _faults(t0: float) -> scenarios.Assignment:
    a = scenarios.Assignment.healthy(N)
    outage, overflow, gone = OUTAGE, OVERFLOW, GONE
    for i in outage:  # 3 simulated hours without GSM: 9 readings wait in the buffer
        a.kind[i], a.onset[i], a.duration_s[i] = scenarios.NAMES.index("gsm_outage"), t0 + 3 * 3600, 3 * 3600
    # 30 simulated hours without GSM: 90 readings for a buffer of 40 (made short for this unit alone
    # by giving every unit the same bound; the others never fill it).
    a.kind[overflow], a.onset[overflow], a.duration_s[overflow] = (
        scenarios.NAMES.index("gsm_outage"),
        t0 + 3600,
        30 * 3600,
    )
    a.kind[gone], a.onset[gone], a.duration_s[gone] = scenarios.NAMES.index("migrates"), t0 + 4 * 3600, 86400 * 90

    return a


def test_fleet_readings_all_arrive_once_across_an_outage_and_a_full_buffer(
    settings: Settings, conn: psycopg.Connection, specs: list[UnitSpec]
) -> None:
    worker = ingest_worker(settings, f"fleet-{uuid.uuid4().hex[:6]}")
    try:
        wait_worker_subscribed(settings, conn, specs[-1].serial)
        # The simulated clock starts once the worker listens: at two simulated hours a second, a slow
        # start (a loaded machine) would otherwise let the unit that moves away leave before it reports.
        clock = SimClock(platform_clock.utc_now() - timedelta(days=3), SPEED, wall=platform_clock.utc_now)
        stats = _run(settings, specs, _faults(clock.now().timestamp()), clock, seconds=25, buffer_limit=40)
        wait_for(lambda: sum(len(v) for v in _rows(conn).values()) >= stats.readings_sent, timeout=60,
                 what=f"{stats.readings_sent} readings in the database")  # fmt: skip
    finally:
        stop_process(worker)
    overflow, gone = OVERFLOW, GONE
    rows = _rows(conn)
    assert sum(len(v) for v in rows.values()) == stats.readings_sent
    assert stats.readings_sent > N * 40
    for i, spec in enumerate(specs):
        seqs = rows[spec.serial]
        assert len(seqs) == len(set(seqs)), f"{spec.serial}: a reading stored twice"
        if i == overflow:
            continue
        if i == gone:  # silent after its onset: what it sent before is all there, in order
            assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 20
            continue
        assert seqs == list(range(1, seqs[-1] + 1)), f"{spec.serial}: a reading lost"
    # The overflowing unit lost its oldest readings, only those, and said how many.
    seqs = rows[specs[overflow].serial]
    missing = sorted(set(range(1, seqs[-1] + 1)) - set(seqs))
    assert len(missing) >= 40
    assert stats.dropped > len(missing)  # the unit that moved away keeps filling its buffer too
    assert missing == list(range(missing[0], missing[0] + len(missing)))  # one run: the oldest of the outage
    # The events the firmware reported are stored by the ingest worker: a boot of every unit, and
    # the overflow with the number lost.
    events = conn.execute("select u.serial, e.kind, e.detail from unit_events e join units u on u.id = e.unit_id"
                          ).fetchall()  # fmt: skip
    assert [(serial, detail) for serial, kind, detail in events if kind == "buffer_overflow"] == [
        (specs[overflow].serial, {"dropped": len(missing)})
    ]
    assert {serial for serial, kind, _ in events if kind == "boot"} == {s.serial for s in specs}
    # The unit that moved away lost its link without a goodbye: the broker published its last will
    # then, long before the others announced they were going offline at the end of the run.
    conn.rollback()
    changed = dict(conn.execute("select u.serial, p.changed_at from unit_presence p join units u on u.id = p.unit_id"
                                " where not p.online").fetchall())  # fmt: skip
    assert set(changed) == {s.serial for s in specs}
    others = min(v for k, v in changed.items() if k != specs[gone].serial)
    assert changed[specs[gone].serial] < others - timedelta(seconds=10)
    assert protocol.MAX_READINGS_PER_MESSAGE >= 40  # the flush after the outage fits one message


def test_load_mode_sends_for_many_units_over_few_connections(
    settings: Settings, conn: psycopg.Connection, specs: list[UnitSpec]
) -> None:
    clock = SimClock(platform_clock.utc_now() - timedelta(days=3), SPEED, wall=platform_clock.utc_now)
    worker = ingest_worker(settings, f"load-{uuid.uuid4().hex[:6]}")
    try:
        wait_worker_subscribed(settings, conn, specs[-1].serial)
        cfg = FleetConfig(settings.mqtt_host, settings.mqtt_port, topic_root=settings.mqtt_topic_root, connections=2)
        stats = FleetStats()
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        thread = threading.Thread(target=lambda: loop.run_until_complete(run_fleet(specs, clock, cfg, stop, stats)))
        thread.start()
        wait_for(lambda: stats.readings_sent >= 20 * N, timeout=60, what="readings from every unit")
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        wait_for(lambda: sum(len(v) for v in _rows(conn).values()) >= stats.readings_sent, timeout=60,
                 what=f"{stats.readings_sent} readings in the database")  # fmt: skip
    finally:
        stop_process(worker)
    rows = _rows(conn)
    assert stats.most_online == N  # two sockets, every unit's traffic
    assert sorted(rows) == [s.serial for s in specs]
    assert all(v == list(range(1, len(v) + 1)) for v in rows.values())
    assert sum(len(v) for v in rows.values()) == stats.readings_sent
