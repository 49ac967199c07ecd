"""The simulated firmware takes token commands: the platform's dispatcher sends a paid token over
MQTT, the unit enters it like a keypad token, its credit grows, and its acknowledgement closes the
delivery."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

import protocol
from backoffice import clock
from backoffice.config import Settings
from backoffice.credit.service import apply_payment
from backoffice.delivery.dispatcher import DevSmsGateway, dispatch_once, handle_ack
from backoffice.delivery.main import MqttLink
from firmware_sim.clock import SimClock
from firmware_sim.fleet import FleetConfig, FleetStats, run_fleet
from firmware_sim.unit import UnitSpec
from tests.support import Subacks, lamp_contract, wait_for


def test_fleet_unit_takes_a_paid_token_over_mqtt_and_acknowledges_it(
    settings: Settings, conn: psycopg.Connection
) -> None:
    contract, key, starting_code = lamp_contract(conn, settings.secret_key, "CMD-1", "Achieng", installed_days_ago=5)
    apply_payment(conn, contract, 3_500 * 10, clock.today(), settings.secret_key)
    conn.commit()
    keys = {"CMD-1": (key, starting_code)}

    cfg = FleetConfig(settings.mqtt_host, settings.mqtt_port, interval=timedelta(hours=6),
                      topic_root=settings.mqtt_topic_root, keys=keys, self_pay=False)  # fmt: skip
    stats = FleetStats()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    spec = UnitSpec("CMD-1", -0.1, 34.7, 50, 20, "lifepo4")
    sim = SimClock(clock.utc_now(), 1.0, wall=clock.utc_now)
    fleet = threading.Thread(target=lambda: loop.run_until_complete(
        run_fleet([spec], sim, cfg, stop, stats, credit_days=0)))  # fmt: skip
    fleet.start()
    link = MqttLink(settings, f"delivery-{uuid.uuid4().hex[:6]}")
    link_subscribed = Subacks(link.client)  # the link subscribes to the acks when it connects
    link.start()
    # What an ingest worker does: take the units' events (the firmware keeps a report that nobody
    # subscribes to and sends it again, tests/firmware_sim/test_not_taken.py).
    events = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"events-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    events_subscribed = Subacks(events)
    events.connect(settings.mqtt_host, settings.mqtt_port)
    events.loop_start()
    events.subscribe(protocol.all_units("events", settings.mqtt_topic_root), qos=1)
    events_subscribed.wait(what="the events observer's SUBACK")
    try:
        wait_for(lambda: stats.online == 1, timeout=20, what="the unit online")
        # The unit's command subscription is in place: once online it awaits its SUBACK, and only
        # then sends what it has buffered (its boot event first).
        wait_for(lambda: stats.events_sent >= 1, timeout=20, what="the unit subscribed (its boot event sent)")
        link_subscribed.wait(what="the delivery link's SUBACK for the acks")
        conn.autocommit = True
        with conn.transaction():
            assert dispatch_once(conn, DevSmsGateway(), link.publish) == 2  # SMS and the unit's command
        wait_for(lambda: not link.acks.empty(), timeout=20, what="the unit's acknowledgement")
        serial, payload = link.acks.get()
        with conn.transaction():
            assert handle_ack(conn, serial, payload)
        assert stats.tokens_accepted == 1
        assert conn.execute("select state from outbox where channel = 'mqtt'").fetchone() == ("acked",)
    finally:
        link.stop()
        events.loop_stop()
        events.disconnect()
        loop.call_soon_threadsafe(stop.set)
        fleet.join(30)
