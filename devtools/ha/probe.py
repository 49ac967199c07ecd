"""A write probe: one small committed insert every ``interval`` seconds through the platform's own
connection path (libpq multi-host string, backoffice.db.connect), reconnecting whenever the primary
goes away. It records when each write was acknowledged (committed), so a fault's write outage is the
gap around it, and every acknowledged write can be looked for afterwards."""

from __future__ import annotations

import bisect
import logging
import threading
import time

import psycopg

from backoffice.config import Settings
from backoffice.db import connect, primary_gone

log = logging.getLogger(__name__)

TABLE = "ha_write_probe"


class WriteProbe:
    def __init__(self, settings: Settings, interval: float = 0.05) -> None:
        self.settings = settings
        self.interval = interval
        self.acked: list[tuple[float, int]] = []  # (monotonic instant of the commit, n)
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-probe", daemon=True)
        self._n = 0

    def setup(self) -> None:
        with connect(self.settings, "ha-probe", autocommit=True) as conn:
            conn.execute(f"create table if not exists {TABLE} (n bigint primary key)")
            row = conn.execute(f"select coalesce(max(n), 0) from {TABLE}").fetchone()
            self._n = int(row[0]) if row else 0

    def start(self) -> WriteProbe:
        self.setup()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            n = self._n + 1
            try:
                if conn is None or conn.closed:
                    conn = connect(self.settings, "ha-probe")
                with conn.transaction():
                    conn.execute(f"insert into {TABLE} (n) values (%s) on conflict do nothing", (n,))
                self.acked.append((time.monotonic(), n))
                self._n = n
            except psycopg.Error as err:
                self.failures += 1
                if not primary_gone(err):
                    log.warning("probe write failed: %s", err)
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def outage_after(self, at: float) -> float | None:
        """Seconds from ``at`` (a fault) to the first write acknowledged after it, or None if none yet."""
        times = [t for t, _ in self.acked]
        i = bisect.bisect_right(times, at)
        return times[i] - at if i < len(times) else None

    def wait_write_after(self, at: float, timeout: float = 120.0) -> float:
        """Wait for a write acknowledged after ``at``; returns the longest time without any
        acknowledged write between ``at`` and that write (a fault's write outage)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outage_after(at) is not None:
                return self.longest_gap(at, self.acked[-1][0])
            time.sleep(0.05)
        raise TimeoutError(f"no write acknowledged within {timeout:.0f}s of the fault")

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time between consecutive acknowledged writes over [start, end] (counting from
        the last write before ``start``)."""
        times = [t for t, _ in self.acked]
        i = max(bisect.bisect_right(times, start) - 1, 0)
        j = bisect.bisect_right(times, end)
        window = times[i:j]
        return max((b - a for a, b in zip(window, window[1:], strict=False)), default=0.0)

    def lost(self) -> list[int]:
        """Acknowledged writes that the database does not hold (read on the current leader)."""
        with connect(self.settings, "ha-probe", autocommit=True) as conn:
            held = {int(r[0]) for r in conn.execute(f"select n from {TABLE}")}
        return [n for _, n in self.acked if n not in held]
