"""Stable ingest slots: the fixed set of broker sessions that the ingest workers share, leased in PostgreSQL.

A worker that leaves a shared-subscription group keeps receiving its share into its persistent
session, so a session owned by a worker id strands telemetry when that worker goes away for good
(scaled down, its pod renamed). Here the sessions belong to slots instead: ``<group>-slot-0`` ..
``<group>-slot-N-1`` (``PAYGO_INGEST_SLOTS``). Each live worker heartbeats, renews the leases it holds
every third of ``PAYGO_INGEST_LEASE_SECONDS``, takes its fair share ``ceil(slots / live workers)`` of
the free or lapsed slots and gives back the ones above it, so that whatever number of workers run,
every slot's session is connected and drained. A worker killed with -9 stops renewing: its leases
lapse and the live workers take its slots over, with the messages its sessions queued and the ones
it had not acknowledged (the broker redelivers them; the (unit, ts, seq) key drops what was already
committed). If two workers ever connect one slot's session, the broker keeps the newer connection
("session taken over"): the older one lets the slot go instead of reconnecting.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable

import psycopg

from backoffice.config import Settings
from backoffice.db import connect
from ingest import repository

log = logging.getLogger(__name__)


class SlotLeases:
    """The leases of one worker, kept by a thread of its own. ``open_slot(n)`` connects slot n's
    session; ``close_slot(n)`` disconnects it (and returns once it is disconnected)."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        open_slot: Callable[[int], None],
        close_slot: Callable[[int], None],
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.lease_s = settings.ingest_lease_seconds
        self._open_slot = open_slot
        self._close_slot = close_slot
        self.held: set[int] = set()  # slots whose session this worker has open
        self._dropped: set[int] = set()  # slots whose session the broker gave to another worker
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._thread: threading.Thread | None = None

    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.settings, "ingest", autocommit=True)
        return self._conn

    def start(self) -> None:
        """The first round (waiting for the database if need be), then a thread for the next ones."""
        while not self._stop.is_set():
            try:
                repository.ensure_slots(self._db(), self.settings.ingest_slots)
                self.cycle()
                break
            except psycopg.OperationalError as err:
                log.warning("slot leases: database unavailable (%s); retrying", str(err).strip().splitlines()[0])
                self._conn = None
                self._stop.wait(1.0)
        self._thread = threading.Thread(target=self._run, name="ingest-slot-leases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                self.cycle()
            except psycopg.Error as err:
                # Keep the sessions open: while nobody can reach the database nobody can take them
                # over either; a worker that can will connect them, and the broker then tells us.
                log.warning("slot leases not renewed (%s); keeping %s", str(err).strip().splitlines()[0], self.held)
                if self._conn is not None:
                    self._conn.close()
                self._conn = None

    def dropped(self, slot: int) -> None:
        """The broker gave slot's session to another client (called from that slot's network thread)."""
        with self._lock:
            self._dropped.add(slot)

    def cycle(self) -> None:
        """One round: heartbeat, renew, let go of what was lost or is above the fair share, claim the rest."""
        conn = self._db()
        live, total = repository.heartbeat(conn, self.worker_id, self.lease_s)
        held = set(repository.renew_slots(conn, self.worker_id, self.lease_s))
        with self._lock:
            dropped, self._dropped = self._dropped, set()
        for slot in sorted((self.held - held) | (dropped & self.held)):  # another worker has it now
            log.warning("slot %d was taken over by another worker", slot)
            self._close(slot)
        if dropped:
            repository.release_slots(conn, self.worker_id, sorted(dropped))
            held -= dropped
        target = math.ceil(total / max(live, 1))
        if live > total and not self.held:
            log.warning("%d live workers for %d slots: this one holds none (raise PAYGO_INGEST_SLOTS)", live, total)
        if len(held) > target:
            extra = sorted(held)[target:]
            for slot in extra:  # disconnected first: a newcomer then finds the session free
                self._close(slot)
            repository.release_slots(conn, self.worker_id, extra)
            held -= set(extra)
            log.info("gave back slots %s (%d live workers, %d slots)", extra, live, total)
        elif len(held) < target:
            claimed = repository.claim_slots(conn, self.worker_id, target - len(held), self.lease_s)
            if claimed:
                log.info("claimed slots %s (%d live workers, %d slots)", claimed, live, total)
            held |= set(claimed)
        for slot in sorted(held - self.held):
            self._open_slot(slot)
            self.held.add(slot)

    def _close(self, slot: int) -> None:
        self._close_slot(slot)
        self.held.discard(slot)

    def interrupt(self) -> None:
        """No more rounds (the worker is stopping; ``stop`` then lets the slots go)."""
        self._stop.set()

    def stop(self) -> None:
        """Disconnect every slot and give the leases back, so that the live workers take them at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        for slot in sorted(self.held):
            self._close(slot)
        try:
            conn = self._db()
            repository.release_slots(conn, self.worker_id, sorted(self._all_mine(conn)))
            repository.leave(conn, self.worker_id)
        except psycopg.Error as err:
            log.warning("could not give the slot leases back (%s); they lapse in %.0fs", err, self.lease_s)
        finally:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _all_mine(self, conn: psycopg.Connection) -> list[int]:
        return [lease.slot for lease in repository.slot_leases(conn) if lease.holder == self.worker_id]
