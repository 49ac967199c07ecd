"""The ingest worker: MQTT v5 shared subscription in, batches committed to PostgreSQL, acks after commit.

paho-mqtt runs the network loop in its own thread and hands messages over through a bounded
queue; the main thread cuts batches by size and by time, writes each in one transaction and only
then acknowledges its messages (``manual_ack``), so a killed worker loses nothing: the broker
redelivers what was not acknowledged and the (unit, ts, seq) key drops the duplicates.

The worker connects the broker sessions of the slots it holds (ingest/slots.py), not one of its own:
sessions belong to a fixed set of slots leased in PostgreSQL, so workers can be scaled up and down
or killed and every session's queue is still drained by someone.

No message stops a worker. A refused message is a dead letter (``ingest_rejects``); one the
database side cannot write, or that kills it, is found by writing its batch in halves and is
dead-lettered after ``MAX_ATTEMPTS``, then acknowledged like the rest of its batch.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import NamedTuple

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import Counter, Gauge, Histogram

import protocol
from backoffice import clock
from backoffice.config import Settings
from ingest.limits import DEAD_LETTER_KEEP, KINDS
from ingest.slots import SlotLeases

log = logging.getLogger(__name__)

RECEIVED = Counter("paygo_ingest_messages_received_total", "MQTT messages received")
READINGS = Counter("paygo_ingest_readings_committed_total", "readings committed (new rows)")
REJECTED = Counter("paygo_ingest_messages_rejected_total", "messages refused into ingest_rejects")
BATCH_SIZE = Histogram(
    "paygo_ingest_batch_messages", "messages per committed batch", buckets=(1, 10, 100, 500, 1000, 5000, 20000)
)
BATCH_SECONDS = Histogram("paygo_ingest_batch_seconds", "time to write and commit one batch")
QUEUE_DEPTH = Gauge("paygo_ingest_queue_depth", "messages received and not yet committed")
# What the autoscaler and the alerts watch (deploy/k8s, deploy/prometheus): a worker that keeps up
# holds a batch or less; one that falls behind fills its queue up to max_pending, its messages
# growing older while they wait.
BACKLOG = Gauge("paygo_ingest_backlog_messages", "messages received and not committed, the batch in writing included")
LAG = Gauge("paygo_ingest_lag_seconds", "time the oldest message of the batch in writing has waited in the worker")
SLOTS_HELD = Gauge("paygo_ingest_slots_held", "broker sessions (slots) this worker holds")

# Session kept by the broker while no worker holds its slot (its queue keeps filling meanwhile).
SESSION_EXPIRY_S = 7 * 24 * 3600
# Times one message may fail in (or kill) the database process before it is dead-lettered unwritten.
MAX_ATTEMPTS = 3
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another connection took the session
_PUBACK = struct.Struct("!BBH")  # fixed header (PUBACK), remaining length 2, packet id: reason "success"
PUBACK_BYTE = 0x40


@dataclass(eq=False)
class SlotClient:
    """One slot's broker session as this worker has it open. Its messages are acknowledged on this
    client only while it is ``active``: once the slot is let go, the broker redelivers what was not
    acknowledged to the slot's next holder, and a packet id must never be acknowledged on another
    connection of the session (the broker may have reused it for another message)."""

    slot: int
    client: mqtt.Client
    active: bool = True


class Received(NamedTuple):
    """A message as the network thread hands it over (``at``: when it arrived, epoch seconds)."""

    mid: int
    qos: int
    topic: str
    payload: bytes | bytearray  # paho's type; it gives bytes
    at: float
    size: int = 0  # see RawMessage.size
    source: SlotClient | None = None  # the session it came in on


class DbSideFailed(Exception):
    """The database process answered a batch with an error, or died while writing it."""


def ack_all(client: mqtt.Client, mids: list[int]) -> None:
    """Acknowledge a committed batch's QoS 1 messages in one write.

    ``Client.ack`` queues one PUBACK per call, and each call wakes paho's network thread, which
    then makes a ``send`` per packet: two system calls and a thread hand-off per message, on the
    interpreter that also receives them. Here the same PUBACK packets (``Client._send_command_with_mid``
    builds them byte for byte) go into paho's out queue as one packet, so the batch costs one wake-up
    and one ``send``. ``_packet_queue`` is paho's private API: paho is pinned in constraints.txt,
    and the ingest tests (whose broker stops delivering once 1,000 messages wait unacknowledged)
    fail if these acknowledgements stop reaching the broker.
    """
    if not mids:
        return
    packet = b"".join(_PUBACK.pack(PUBACK_BYTE, 2, mid) for mid in mids)
    client._packet_queue(PUBACK_BYTE, packet, 0, 0)  # noqa: SLF001


class IngestWorker:
    db_side_module = "ingest.dbside"  # what runs as the database process

    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        batch_size: int = 5000,
        flush_seconds: float = 0.2,
        max_pending: int = 50_000,
        group: str | None = None,
        session_expiry_s: int = SESSION_EXPIRY_S,
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.group = group or settings.ingest_group
        self.client_id = self.slot_client_id(0)  # the first slot's session (each slot has its own)
        self.session_expiry_s = session_expiry_s
        # Mosquitto 2.0 does not enforce our Receive Maximum, so we bound this queue ourselves:
        # past max_pending the network thread waits and the broker's TCP window fills up.
        self._queue: queue.SimpleQueue[Received] = queue.SimpleQueue()
        self.max_pending = max_pending
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._db_pipe: Connection | None = None
        self._db_process: subprocess.Popen[bytes] | None = None
        self.committed_readings = 0
        self._slots: dict[int, SlotClient] = {}
        self._slots_lock = threading.Lock()
        self.leases = SlotLeases(settings, worker_id, self._open_slot, self._close_slot)

    def slot_client_id(self, slot: int) -> str:
        return f"{self.group}-slot-{slot}"

    @property
    def held_slots(self) -> list[int]:
        with self._slots_lock:
            return sorted(self._slots)

    # ---- MQTT side (paho's network thread)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        if getattr(rc, "is_failure", False):
            log.error("mqtt connect refused: %s", rc)
            return
        root = self.settings.mqtt_topic_root
        client.subscribe([(protocol.shared_subscription(self.group, kind, root), 1) for kind in KINDS])
        self._connected.set()
        log.info("mqtt connected client_id=%s session_present=%s", client._client_id.decode(),  # noqa: SLF001
                 getattr(flags, "session_present", None))  # fmt: skip

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        source = userdata if isinstance(userdata, SlotClient) else None
        if source is not None and source.active and getattr(rc, "value", None) == SESSION_TAKEN_OVER:
            # Another worker holds this slot now: reconnecting would take the session back from it.
            source.active = False
            client.disconnect()  # paho's loop then stops instead of reconnecting
            self.leases.dropped(source.slot)
            log.warning("slot %d: session taken over by another worker", source.slot)
            return
        if not self._stop.is_set() and (source is None or source.active):
            log.warning("mqtt disconnected: %s; paho reconnects", rc)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # As little as possible here: this thread's time per message is the worker's ceiling.
        source = userdata if isinstance(userdata, SlotClient) else None
        payload = msg.payload
        if len(payload) <= protocol.MAX_MESSAGE_BYTES:
            self._queue.put(Received(msg.mid, msg.qos, msg.topic, payload, clock.utc_now().timestamp(), 0, source))
        else:  # only its start is kept for the dead letter, so the queue's bound holds in bytes too
            self._queue.put(Received(msg.mid, msg.qos, msg.topic, payload[:DEAD_LETTER_KEEP],
                                     clock.utc_now().timestamp(), len(payload), source))  # fmt: skip
        while self._queue.qsize() > self.max_pending and not self._stop.is_set() and (source is None or source.active):
            time.sleep(0.01)

    # ---- the slots' sessions (opened and closed by the lease thread, ingest/slots.py)

    def _open_slot(self, slot: int) -> None:
        client = self._make_client(self.slot_client_id(slot))
        source = SlotClient(slot, client)
        client.user_data_set(source)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = 1000
        host, port = self.settings.mqtt_host, self.settings.mqtt_port
        client.connect_async(host, port, keepalive=30, clean_start=False, properties=props)
        client.loop_start()
        with self._slots_lock:
            self._slots[slot] = source
        log.info("worker %s opened slot %d", self.worker_id, slot)

    def _close_slot(self, slot: int) -> None:
        with self._slots_lock:
            source = self._slots.pop(slot, None)
        if source is None:
            return
        source.active = False  # its messages still waiting here are committed but not acknowledged
        source.client.disconnect()
        source.client.loop_stop()
        log.info("worker %s closed slot %d", self.worker_id, slot)

    def _make_client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        client.username_pw_set(*self.settings.service_login("ingest"))  # may only read
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        return client

    # ---- database side: a process of its own (ingest/dbside.py), driven from the main thread

    def _commit(self, messages: list[Received]) -> None:
        """Have the database process write one batch in one transaction; return once committed.
        It retries while the database is away; stopping meanwhile raises OperationalError; an error
        or the process's death raises DbSideFailed."""
        self._call([(m.topic, m.payload, m.at, m.size) for m in messages], len(messages))

    def _call(self, item: object, messages: int) -> None:
        pipe = self._ensure_db_side()
        told = False
        try:
            pipe.send(item)
            while not pipe.poll(0.2):
                if self._stop.is_set() and not told:  # a batch retrying against an absent database gives up
                    pipe.send("stop")  # (sent from this thread only: never mid-message)
                    told = True
            reply = pipe.recv()
        except (EOFError, OSError):
            self._reap_db_side()
            raise DbSideFailed("the worker's database process died") from None
        if reply[0] == "down":
            raise psycopg.OperationalError("database unavailable while stopping")
        if reply[0] == "error":
            raise DbSideFailed(f"the worker's database process failed: {reply[1]}")
        _, inserted, rejected, seconds = reply
        BATCH_SECONDS.observe(seconds)
        BATCH_SIZE.observe(messages)
        READINGS.inc(inserted)
        REJECTED.inc(rejected)
        self.committed_readings += inserted

    def _write(self, messages: list[Received]) -> None:
        """Commit a batch; if the database process fails on it (it writes its own refusals and the
        messages it cannot write as dead letters, so this is for what kills it), find the message
        by halves and dead-letter it after MAX_ATTEMPTS. Returns once every message is committed or
        dead-lettered; OperationalError only when stopping while the database is away."""
        try:
            self._commit(messages)
        except DbSideFailed as err:
            log.error("batch of %d failed: %s; writing it in halves", len(messages), err)
            self._isolate(messages, str(err))

    def _isolate(self, messages: list[Received], why: str) -> None:
        if len(messages) == 1:
            for _ in range(MAX_ATTEMPTS - 1):  # it has failed once already
                try:
                    self._commit(messages)
                    return
                except DbSideFailed as err:
                    why = str(err)
            self._dead_letter(messages[0], f"failed {MAX_ATTEMPTS} times in the database process: {why}")
            return
        half = len(messages) // 2
        for part in (messages[:half], messages[half:]):
            try:
                self._commit(part)
            except DbSideFailed as err:
                self._isolate(part, str(err))

    def _dead_letter(self, m: Received, reason: str) -> None:
        """Store a message as a dead letter without parsing it; if even that fails, log it and let
        it go (it is acknowledged with its batch: no message is retried for ever)."""
        row = (m.topic, bytes(m.payload), m.at, m.size, reason)
        reason_again: Exception | None = None
        for _ in range(MAX_ATTEMPTS):
            try:
                self._call(("dead", [row]), 1)
                log.error("dead-lettered topic=%s reason=%s", m.topic, reason)
                return
            except DbSideFailed as err:
                reason_again = err
        log.error("could not store a dead letter (%s); dropping topic=%s payload=%r", reason_again, m.topic,
                  bytes(m.payload[:200]))  # fmt: skip

    def _ensure_db_side(self) -> Connection:
        """The pipe to the database process, started again if it has died."""
        if self._db_pipe is None or self._db_process is None or self._db_process.poll() is not None:
            if self._db_process is not None:
                log.warning("restarting the worker's database process")
            self._reap_db_side()
            self._start_db_side()
        assert self._db_pipe is not None
        return self._db_pipe

    def _reap_db_side(self) -> None:
        """Close the pipe to a database process that died (or is dying) and wait for it to end."""
        if self._db_pipe is not None:
            self._db_pipe.close()
            self._db_pipe = None
        if self._db_process is not None:
            try:
                self._db_process.wait(10)
            except subprocess.TimeoutExpired:
                self._db_process.kill()
                self._db_process.wait()
            self._db_process = None

    def _start_db_side(self) -> None:
        """``python -m ingest.dbside`` on one end of a socket pair: a fresh interpreter that imports
        only what writing needs (not this process's command line), given our settings first."""
        here, there = socket.socketpair()
        self._db_process = subprocess.Popen([sys.executable, "-m", self.db_side_module, str(there.fileno())],
                                            pass_fds=[there.fileno()])  # fmt: skip
        there.close()
        self._db_pipe = Connection(here.detach())
        self._db_pipe.send(self.settings)
        try:
            ready = self._db_pipe.recv()  # connected to the database (it waits for it if need be)
        except EOFError:
            ready = None
        if ready != "ready":
            raise RuntimeError("the worker's database process did not start")

    def _stop_db_side(self) -> None:
        if self._db_pipe is not None:
            with contextlib.suppress(OSError):
                self._db_pipe.send(None)
            self._db_pipe.close()
            self._db_pipe = None
        if self._db_process is not None:
            try:
                self._db_process.wait(30)
            except subprocess.TimeoutExpired:
                self._db_process.kill()
                self._db_process.wait()

    def _next_batch(self) -> list[Received]:
        try:
            first = self._queue.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.flush_seconds
        while len(batch) < self.batch_size:
            try:  # take what is already waiting without a timed wait per message
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _ack(self, messages: list[Received]) -> None:
        """Acknowledge committed messages on the sessions they came in on, those still open here."""
        by_source: dict[int, tuple[SlotClient, list[int]]] = {}
        for m in messages:
            if m.qos == 1 and m.source is not None:
                by_source.setdefault(id(m.source), (m.source, []))[1].append(m.mid)
        for source, mids in by_source.values():
            if source.active:
                ack_all(source.client, mids)

    def stop(self) -> None:
        self._stop.set()
        self.leases.interrupt()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def run(self) -> None:
        self._start_db_side()
        self.leases.start()  # connects the sessions of the slots it takes
        log.info("ingest worker %s started with slots %s", self.worker_id, self.held_slots)
        try:
            while not self._stop.is_set():
                messages = self._next_batch()
                RECEIVED.inc(len(messages))
                QUEUE_DEPTH.set(self._queue.qsize())
                BACKLOG.set(self._queue.qsize() + len(messages))
                SLOTS_HELD.set(len(self._slots))
                if not messages:
                    LAG.set(0)
                    continue
                LAG.set(max(0.0, clock.utc_now().timestamp() - messages[0].at))
                try:
                    self._write(messages)
                except psycopg.OperationalError:
                    break  # stopping while the database is down: leave the messages unacknowledged
                self._ack(messages)
        finally:
            self.leases.stop()  # disconnects every slot and gives the leases back
            self._stop_db_side()
            log.info("ingest worker %s stopped after %d readings", self.worker_id, self.committed_readings)
