"""``paygo delivery run``: the dispatcher process. One MQTT connection publishes token commands and
listens for the units' acknowledgements; the outbox is polled every ``interval`` seconds."""

from __future__ import annotations

import logging
import queue
import socket
import threading
from datetime import timedelta

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from backoffice.config import Settings
from backoffice.db import connect
from backoffice.delivery.dispatcher import DevSmsGateway, Policy, dispatch_once, handle_ack
from protocol import ProtocolError, all_units, parse_topic, topic

log = logging.getLogger(__name__)


class MqttLink:
    """Publishes commands with QoS 1 and queues acknowledgements for the database thread."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.settings = settings
        self.acks: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        self.client.username_pw_set(*settings.service_login("delivery"))  # commands out, acks in
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        client.subscribe(all_units("cmd/ack", self.settings.mqtt_topic_root), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            serial, _ = parse_topic(msg.topic, self.settings.mqtt_topic_root)
        except ProtocolError:
            return
        self.acks.put((serial, bytes(msg.payload)))

    def start(self) -> None:
        self.client.connect(self.settings.mqtt_host, self.settings.mqtt_port)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def publish(self, serial: str, payload: str) -> None:
        info = self.client.publish(topic(serial, "cmd", self.settings.mqtt_topic_root), payload, qos=1)
        info.wait_for_publish(timeout=10)
        if not info.is_published():
            raise ConnectionError("the broker did not confirm the command (QoS 1)")


def run(settings: Settings, stop: threading.Event, interval: float = 1.0, retry_after: float | None = None) -> None:
    """Until ``stop``: acknowledgements recorded, due deliveries sent, retried with backoff, failed after
    PAYGO_DELIVERY_MAX_ATTEMPTS, reminders held in the quiet hours (``Policy.from_settings``); ``retry_after``
    (seconds) overrides the first wait."""
    policy = Policy.from_settings(settings, timedelta(seconds=retry_after) if retry_after else None)
    link = MqttLink(settings, f"delivery-{socket.gethostname()}")
    link.start()
    gateway = DevSmsGateway()
    conn: psycopg.Connection | None = None
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connect(settings, "delivery")
                while not link.acks.empty():
                    serial, payload = link.acks.get_nowait()
                    with conn.transaction():
                        handle_ack(conn, serial, payload)
                with conn.transaction():
                    dispatch_once(conn, gateway, link.publish, policy=policy)
            except psycopg.OperationalError as err:
                log.warning("database unavailable, retrying: %s", err)
                conn = None
            stop.wait(interval)
    finally:
        link.stop()
        if conn is not None:
            conn.close()
