"""Waiting for MQTT subscriptions to be in place: a paho client's SUBACKs, an ingest worker in this
process (its SUBACK) or in another one (a probe message it stores)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
from paho.mqtt.reasoncodes import ReasonCode

import protocol
from backoffice.config import Settings
from ingest.consumer import IngestWorker
from tests.support.db import count
from tests.support.wait import wait_for


class Subacks:
    """The SUBACKs a paho client receives. Watch the client before it subscribes (a client that
    subscribes in its on_connect: before it connects), then ``wait`` for them."""

    def __init__(self, client: mqtt.Client | None = None) -> None:
        self.reason_codes: list[ReasonCode] = []
        self.received = 0
        self._lock = threading.Lock()
        if client is not None:
            self.watch(client)

    def watch(self, client: mqtt.Client) -> None:
        previous = client.on_subscribe

        def on_subscribe(c: mqtt.Client, userdata: Any, mid: int, codes: list[ReasonCode], props: Any) -> None:
            if previous is not None:
                previous(c, userdata, mid, codes, props)
            with self._lock:
                self.reason_codes.extend(codes)
                self.received += 1

        client.on_subscribe = on_subscribe

    def wait(self, count: int = 1, timeout: float = 10.0, what: str = "SUBACK") -> list[ReasonCode]:
        """Until ``count`` SUBACKs have arrived; the reason codes of all of them."""
        wait_for(lambda: self.received >= count, timeout=timeout, what=what)
        with self._lock:
            return list(self.reason_codes)


class WatchedWorker(IngestWorker):
    """An ingest worker whose client's SUBACK the test can wait for, and whose unexpected
    disconnections it counts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subacks = Subacks()
        self.disconnects = 0

    def _make_client(self, client_id: str) -> mqtt.Client:
        client = super()._make_client(client_id)
        self.subacks.watch(client)
        return client

    def _on_disconnect(self, *args: Any) -> None:
        if not self._stop.is_set():
            self.disconnects += 1
        super()._on_disconnect(*args)


@contextmanager
def running(worker: WatchedWorker, join_timeout: float = 60) -> Iterator[threading.Thread]:
    """The worker in a thread, yielded once the broker has acknowledged its subscriptions; stopped
    and joined afterwards."""
    thread = threading.Thread(target=worker.run, name="ingest-worker")
    thread.start()
    try:
        assert worker.wait_connected(30)
        worker.subacks.wait(timeout=30, what="the ingest worker's SUBACK")
        yield thread
    finally:
        worker.stop()
        thread.join(join_timeout)
    assert not thread.is_alive()


@contextmanager
def ingest_worker_thread(settings: Settings, prefix: str = "test") -> Iterator[IngestWorker]:
    """An ingest worker in a thread of this process (a group of its own, batches every 50 ms),
    yielded once the broker has acknowledged its subscriptions; stopped and joined afterwards."""
    worker = WatchedWorker(settings, f"{prefix}-{uuid.uuid4().hex[:8]}", group=f"g{uuid.uuid4().hex[:8]}",
                           flush_seconds=0.05, session_expiry_s=5)  # fmt: skip
    with running(worker, join_timeout=30):
        yield worker


def wait_worker_subscribed(settings: Settings, conn: Any, serial: str, timeout: float = 60.0) -> None:
    """Until an ingest worker in another process is subscribed. Before its shared subscription
    exists the broker keeps nothing for it, so probe with the unit's ``offline`` status (a unit
    that is not connected yet) until the worker has stored one."""
    status = protocol.topic(serial, "status", settings.mqtt_topic_root)

    def stored() -> bool:
        publish.single(status, b"offline", qos=1, hostname=settings.mqtt_host, port=settings.mqtt_port)
        return count(conn, "select count(*) from unit_presence") > 0

    wait_for(stored, timeout=timeout, what="the ingest worker subscribed")
