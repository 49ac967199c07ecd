"""The database side of an ingest worker, in a process of its own (``python -m ingest.dbside FD``).

The worker's network side (paho's thread and the main thread) only receives, batches and
acknowledges, so on its interpreter it keeps up with what a bare subscriber drains. Parsing,
validation and the COPY happen here, on another core, one batch at a time: the parent sends its
settings, then batches of (topic, payload, received at); this process answers each with
("ok", readings inserted, messages rejected, seconds) once committed, ("down",) when told to stop
while the database is away, or ("error", why).
"""

from __future__ import annotations

import functools
import logging
import random
import signal
import sys
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import psycopg

from backoffice.config import Settings
from backoffice.db import connect
from ingest import openpaygo_metrics, writer
from ingest.consumer import RawMessage, UnitDirectory, to_batch

log = logging.getLogger(__name__)


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
            except EOFError:
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
        Returns (readings inserted, messages rejected, seconds)."""
        delay = 0.5
        while True:
            try:
                conn = self.db()
                started = time.perf_counter()
                batch = to_batch(
                    messages,
                    functools.partial(self.directory.lookup, conn=conn),
                    datetime.now(UTC),
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
                    except psycopg.OperationalError:
                        raise
                    except Exception as err:  # noqa: BLE001 - a poison message must not stop the worker
                        writer.write_rejects(
                            conn, [(datetime.now(UTC), "metrics", None, f"unprocessable: {err}", body)]
                        )
                conn.commit()
                for r in batch.rejects:
                    log.warning("rejected topic=%s reason=%s", r[1], r[3])
                return inserted, len(batch.rejects), time.perf_counter() - started
            except psycopg.OperationalError as err:
                log.warning(
                    "database unavailable (%s); retrying batch of %d in %.1fs",
                    str(err).strip().splitlines()[0],
                    len(messages),
                    delay,
                )
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                self.wait(delay)
                delay = min(delay * 2, 10.0) * (0.8 + 0.4 * random.random())


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
    pipe.send("ready")
    while True:
        try:
            item = pipe.recv()
        except EOFError:
            return
        if item is None:
            break
        if item == "stop":
            continue  # the parent is stopping; its None follows
        messages = [RawMessage(topic, bytes(payload), datetime.fromtimestamp(at, UTC)) for topic, payload, at in item]
        try:
            reply: tuple[Any, ...] = ("ok", *side.commit(messages))
        except Stopping:
            reply = ("down",)
        except Exception as err:  # noqa: BLE001 - reported to the parent, which stops
            log.exception("batch failed")
            reply = ("error", repr(err))
        try:
            pipe.send(reply)
        except OSError:
            return
    if side.conn is not None:
        side.conn.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
