"""The database side of an ingest worker, in a process of its own (``python -m ingest.dbside FD``).

The worker's network side (paho's thread and the main thread) only receives, batches and
acknowledges, so on its interpreter it keeps up with what a bare subscriber drains. Parsing,
validation and the COPY happen here, on another core, one batch at a time: the parent sends its
settings, then batches of (topic, payload, received at, size), or ("dead", rows) to store as dead
letters unparsed; this process answers each with ("ok", readings inserted, messages rejected,
seconds) once committed, ("down",) when told to stop while the database is away, or ("error", why).
"""

from __future__ import annotations

import functools
import logging
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import psycopg
import psycopg.errors

import protocol
from backoffice import clock
from backoffice.config import Settings
from backoffice.db import connect
from backoffice.registry.repository import unit_ids_by_serial
from ingest import openpaygo_metrics, writer
from ingest.limits import DEAD_LETTER_KEEP, KINDS, MAX_BEFORE_CREATED, MAX_FUTURE
from protocol import ProtocolError, safe_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMessage:
    """A message as the database side parses it."""

    topic: str
    payload: bytes
    received_at: datetime
    size: int = 0  # when the payload was too large: its size (``payload`` is then only its start)


@dataclass
class Batch:
    rows: list[writer.ReadingRow] = field(default_factory=list)
    rejects: list[tuple[datetime, str, str | None, str, bytes]] = field(default_factory=list)
    presence: list[tuple[int, bool, datetime]] = field(default_factory=list)  # (unit, online, at)
    metrics: list[bytes] = field(default_factory=list)  # OpenPAYGO Metrics bodies, checked with the unit's key
    events: list[writer.EventRow] = field(default_factory=list)


class UnitDirectory:
    """serial -> (unit id, registered at), reloaded from the database on a miss at most every few seconds."""

    def __init__(self, min_reload_s: float = 5.0) -> None:
        self._units: dict[str, tuple[int, datetime]] = {}
        self._loaded_at = 0.0
        self._min_reload_s = min_reload_s

    def load(self, conn: psycopg.Connection) -> None:
        self._units = unit_ids_by_serial(conn)
        self._loaded_at = time.monotonic()

    def lookup(self, serial: str, conn: psycopg.Connection) -> tuple[int, datetime] | None:
        found = self._units.get(serial)
        if found is None and time.monotonic() - self._loaded_at > self._min_reload_s:
            self.load(conn)
            found = self._units.get(serial)
        return found


def to_batch(
    messages: list[RawMessage],
    lookup: Callable[[str], tuple[int, datetime] | None],
    now: datetime,
    root: str = protocol.TOPIC_ROOT,
) -> Batch:
    """Turn raw messages into reading rows and dead letters. Pure apart from the unit look-up."""
    batch = Batch()
    for m in messages:
        serial: str | None = None
        try:
            serial, kind = protocol.parse_topic(m.topic, root)
            if m.size:
                raise ProtocolError(
                    f"message of {m.size} bytes exceeds {protocol.MAX_MESSAGE_BYTES} (its first {len(m.payload)} "
                    "bytes are kept)"
                )
            if kind not in KINDS:
                raise ProtocolError(f"unexpected topic kind {kind!r}")
            if kind == "metrics":
                batch.metrics.append(m.payload)  # authenticated and stored like POST /dd
                continue
            unit = lookup(serial)
            if unit is None:
                raise ProtocolError(f"unknown serial {serial!r}")
            unit_id, created_at = unit
            if kind == "status":
                batch.presence.append((unit_id, protocol.parse_status(m.payload), m.received_at))
                continue
            if kind == "events":
                evs = protocol.parse_events(m.payload, serial).events
                for i, e in enumerate(evs):
                    if e.ts > now + MAX_FUTURE:
                        raise ProtocolError(f"event {i} ({e.kind}) has timestamp {e.ts.isoformat()} in the future")
                batch.events.extend((unit_id, e.ts, e.kind, e.detail, m.received_at) for e in evs)
                continue
            msg = protocol.parse_telemetry(m.payload, serial)
            rows = []
            for i, r in enumerate(msg.readings):
                if r.ts > now + MAX_FUTURE:
                    raise ProtocolError(f"reading {i} (seq {r.seq}) has timestamp {r.ts.isoformat()} in the future")
                if r.ts < created_at - MAX_BEFORE_CREATED:
                    raise ProtocolError(
                        f"reading {i} (seq {r.seq}) has timestamp {r.ts.isoformat()} before the unit existed"
                    )
                rows.append(writer.reading_row(unit_id, r, m.received_at))
            batch.rows.extend(rows)
        except ProtocolError as err:
            kept = m.payload if len(m.payload) <= protocol.MAX_MESSAGE_BYTES else m.payload[:DEAD_LETTER_KEEP]
            batch.rejects.append((m.received_at, m.topic, serial, str(err), kept))
    return batch


class Stopping(Exception):
    pass


class DbSide:
    """Parses batches and writes them to PostgreSQL, in the worker's second process.

    The network side (paho's thread and the main thread) only receives, batches and acknowledges,
    so on one interpreter it keeps up with what a bare subscriber drains; parsing, validation and
    COPY happen here on another core, a batch at a time.
    """

    def __init__(self, settings: Settings, pipe: Connection) -> None:
        self.settings = settings
        self.pipe = pipe
        self.conn: psycopg.Connection | None = None
        self.directory = UnitDirectory()

    def wait(self, seconds: float) -> None:
        """Sleep before a retry, unless the parent says stop (or is gone) meanwhile."""
        if self.pipe.poll(seconds):
            try:
                item = self.pipe.recv()
            except (EOFError, OSError):  # the parent is gone (a reset when it died with data unread)
                raise Stopping from None
            if item in ("stop", None):
                raise Stopping

    def db(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = connect(self.settings, "ingest")
            self.directory.load(self.conn)
            self.conn.commit()
        return self.conn

    def commit(self, messages: list[RawMessage]) -> tuple[int, int, float]:
        """Write one batch in one transaction; retry with back-off until the database takes it.
        Returns (readings inserted, messages rejected, seconds).

        A batch that fails for another reason than the database being away is written again in
        halves, each in a savepoint, down to the message that fails: that one becomes a dead letter
        with the error, and every other message of the batch is stored."""
        delay = 0.5
        while True:
            try:
                conn = self.db()
                started = time.perf_counter()
                try:
                    with conn.transaction():
                        written = self._write(conn, messages)
                except Exception as err:
                    if transient(err, conn):
                        raise
                    log.warning("batch of %d failed (%s); writing it in halves", len(messages), _first_line(err))
                    with conn.transaction():
                        written = self._isolate(conn, messages, err)
                for reason in written.rejects:
                    log.warning("rejected %s", reason)
                return written.inserted, len(written.rejects), time.perf_counter() - started
            except psycopg.OperationalError as err:
                log.warning(
                    "database unavailable (%s); retrying batch of %d in %.1fs", _first_line(err), len(messages), delay
                )
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                self.wait(delay)
                delay = min(delay * 2, 10.0) * (0.8 + 0.4 * random.random())

    def _write(self, conn: psycopg.Connection, messages: list[RawMessage]) -> Written:
        """Parse and write messages in the caller's transaction."""
        batch = to_batch(
            messages,
            functools.partial(self.directory.lookup, conn=conn),
            clock.utc_now(),
            self.settings.mqtt_topic_root,
        )
        inserted = writer.write_readings(conn, batch.rows)
        writer.write_rejects(conn, batch.rejects)
        writer.write_presence(conn, batch.presence)
        writer.write_events(conn, batch.events)
        for body in batch.metrics:
            try:
                with conn.transaction():  # a savepoint: one bad body never fails the batch
                    openpaygo_metrics.handle(conn, body, self.settings.secret_key)  # refusals: dead letters
            except Exception as err:
                if transient(err, conn):
                    raise
                writer.write_rejects(conn, [(clock.utc_now(), "metrics", None, f"unprocessable: {err!r}", body)])
        return Written(inserted, [f"topic={r[1]} reason={r[3]}" for r in batch.rejects])

    def _isolate(self, conn: psycopg.Connection, messages: list[RawMessage], err: Exception) -> Written:
        """Messages that failed together: each half in a savepoint, down to single messages, which
        become dead letters with their error."""
        if len(messages) == 1:
            m = messages[0]
            reason = f"unprocessable: {type(err).__name__}: {_first_line(err)}"
            with conn.transaction():
                writer.write_rejects(conn, [(m.received_at, m.topic, self._serial(m.topic), reason, m.payload)])
            return Written(0, [f"topic={m.topic} reason={reason}"])
        half = len(messages) // 2
        total = Written(0, [])
        for part in (messages[:half], messages[half:]):
            try:
                with conn.transaction():
                    written = self._write(conn, part)
            except Exception as part_err:
                if transient(part_err, conn):
                    raise
                written = self._isolate(conn, part, part_err)
            total.inserted += written.inserted
            total.rejects += written.rejects
        return total

    def _serial(self, topic: str) -> str | None:
        try:
            return protocol.parse_topic(topic, self.settings.mqtt_topic_root)[0]
        except ProtocolError:
            return None

    def dead_letters(self, rows: list[tuple[str, bytes, float, int, str]]) -> tuple[int, int, float]:
        """Store messages as dead letters without parsing them (the worker gave up on them)."""
        delay = 0.5
        while True:
            try:
                conn = self.db()
                started = time.perf_counter()
                with conn.transaction():
                    writer.write_rejects(
                        conn, [(datetime.fromtimestamp(at, UTC), topic, self._serial(topic), reason, payload)
                               for topic, payload, at, _, reason in rows]
                    )  # fmt: skip
                return 0, len(rows), time.perf_counter() - started
            except psycopg.OperationalError as err:
                log.warning("database unavailable (%s); retrying dead letters in %.1fs", _first_line(err), delay)
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                self.wait(delay)
                delay = min(delay * 2, 10.0) * (0.8 + 0.4 * random.random())


@dataclass
class Written:
    inserted: int  # readings new to the table
    rejects: list[str]  # what was refused, for the log


def transient(err: Exception, conn: psycopg.Connection) -> bool:
    """Whether the database (not the batch) is the problem: it is away, or the connection broke, or
    it is busy (deadlock, cancelled, out of disk). Then the whole batch waits and is tried again;
    any other error is the batch's. A program limit (e.g. an index row too large) is the data's."""
    if conn.closed or conn.broken:
        return True
    return isinstance(err, psycopg.OperationalError) and not isinstance(err, psycopg.errors.ProgramLimitExceeded)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def main(fd: int) -> None:
    """Batches in, answers out, until told to stop (None) or the parent is gone (end of file)."""
    # Signals are for the parent, which finishes its batch and then tells this process to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pipe = Connection(fd)
    try:
        settings = pipe.recv()
    except EOFError:
        return
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    side = DbSide(settings, pipe)
    while True:  # the first connection, waiting for the database like every later one
        try:
            side.db()
            break
        except psycopg.OperationalError as err:
            log.warning("database unavailable (%s); retrying", str(err).strip().splitlines()[0])
            try:
                side.wait(1.0)
            except Stopping:
                return
    try:
        pipe.send("ready")
    except OSError:  # the parent died while this process was starting (a worker killed with -9)
        return
    while True:
        try:
            item = pipe.recv()
        except (EOFError, OSError):  # the parent is gone (a reset when it died with data unread)
            return
        if item is None:
            break
        if item == "stop":
            continue  # the parent is stopping; its None follows
        try:
            if isinstance(item, tuple) and item[0] == "dead":
                reply: tuple[Any, ...] = ("ok", *side.dead_letters(item[1]))
            else:
                messages = [RawMessage(topic, bytes(payload), datetime.fromtimestamp(at, UTC), size)
                            for topic, payload, at, size in item]  # fmt: skip
                reply = ("ok", *side.commit(messages))
        except Stopping:
            reply = ("down",)
        except Exception as err:  # noqa: BLE001 - reported to the parent, which finds the message by halves
            log.exception("batch failed")
            reply = ("error", safe_text(repr(err), 500))
            if side.conn is not None:  # start the next batch on a fresh connection
                side.conn.close()
            side.conn = None
        try:
            pipe.send(reply)
        except OSError:
            return
    if side.conn is not None:
        side.conn.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
