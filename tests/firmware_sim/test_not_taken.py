"""A report the broker takes for nobody is not lost: Mosquitto answers a QoS 1 publish that no
subscription matches with the MQTT 5 PUBACK reason "no matching subscribers" (0x10), as it does right
after a restart, before the ingest workers' shared subscriptions are back (docs/operations.md,
"Mosquitto restarts"). The simulated firmware keeps such a report and sends it again."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import protocol
from backoffice import clock as platform_clock
from backoffice.config import Settings
from firmware_sim.clock import SimClock
from firmware_sim.fleet import FleetConfig, FleetStats, run_fleet
from firmware_sim.unit import UnitSpec
from tests.support import Subacks, wait_for

SPEED = 7200.0  # a reading every 0.17 s


def test_a_report_nobody_subscribes_to_is_kept_and_sent_once_someone_does(settings: Settings) -> None:
    root = f"nt{uuid.uuid4().hex[:8]}"  # a topic root of its own: no other session of the broker matches it
    serial = "NT-1"
    cfg = FleetConfig(settings.mqtt_host, settings.mqtt_port, topic_root=root, self_pay=True)
    stats = FleetStats()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    sim = SimClock(platform_clock.utc_now() - timedelta(days=1), SPEED, wall=platform_clock.utc_now)
    spec = UnitSpec(serial, -1.0, 36.0, 50, 20, "lifepo4")
    fleet = threading.Thread(target=lambda: loop.run_until_complete(
        run_fleet([spec], sim, cfg, stop, stats, credit_days=30)))  # fmt: skip
    received: list[bytes] = []
    observer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"observer-{root}", protocol=mqtt.MQTTv5)
    observer.on_message = lambda c, u, m: received.append(bytes(m.payload))
    subacks = Subacks(observer)
    fleet.start()
    try:
        wait_for(lambda: stats.not_taken >= 3, timeout=60, what="reports answered 'no matching subscribers'")
        assert stats.readings_sent == 0 and stats.buffered > 0  # kept, none counted as sent
        observer.connect(settings.mqtt_host, settings.mqtt_port)
        observer.loop_start()
        observer.subscribe([(protocol.all_units("telemetry", root), 1), (protocol.all_units("events", root), 1)])
        subacks.wait(what="the observer's SUBACK")
        kept = stats.buffered
        wait_for(lambda: stats.readings_sent >= kept + 5, timeout=60, what="the kept readings sent")
    finally:
        loop.call_soon_threadsafe(stop.set)
        fleet.join(60)

    def seqs() -> list[int]:
        return sorted(r.seq for p in list(received) if b'"readings"' in p
                      for r in protocol.parse_telemetry(p, serial).readings)  # fmt: skip

    wait_for(lambda: len(seqs()) >= stats.readings_sent, timeout=30, what="every reading received")
    observer.loop_stop()
    observer.disconnect()
    got = seqs()
    assert len(got) == len(set(got)) == stats.readings_sent
    assert got == list(range(got[0], got[0] + len(got)))  # none missing: the first ones were kept
