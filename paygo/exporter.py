"""The platform exporter (``paygo metrics serve``): what the alerts watch that no single process
knows, read from the database at each scrape: the outbox's waiting messages and their age, payment
callbacks by status, dead letters, ingest slots left unheld, the scheduled jobs' last runs and the
standbys' replication lag. One replica is enough (it only reads)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import psycopg
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backoffice.config import Settings
from backoffice.db import connect
from backoffice.monitoring import repository

log = logging.getLogger(__name__)


class PlatformCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # scrapes may overlap; one connection, one at a time

    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.settings, "exporter", autocommit=True)
        return self._conn

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("paygo_exporter_database_up", "whether the exporter could read the database")
        with self._lock:
            try:
                metrics = list(self._read(self._db()))
            except psycopg.Error as err:
                log.warning("scrape failed: %s", err)
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                up.add_metric([], 0)
                yield up
                return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _read(self, conn: psycopg.Connection) -> Iterator[Metric]:
        waiting = GaugeMetricFamily("paygo_outbox_waiting", "outbox messages not yet acknowledged", labels=["channel"])
        oldest = GaugeMetricFamily("paygo_outbox_oldest_waiting_seconds", "age of the oldest waiting outbox message",
                                   labels=["channel"])  # fmt: skip
        failed = GaugeMetricFamily("paygo_outbox_failed_last_day", "outbox messages given up in the last 24 h",
                                   labels=["channel"])  # fmt: skip
        for q in repository.outbox_queues(conn):
            waiting.add_metric([q.channel], q.waiting)
            oldest.add_metric([q.channel], q.oldest_seconds)
            failed.add_metric([q.channel], q.failed)
        yield from (waiting, oldest, failed)

        payments = GaugeMetricFamily("paygo_payments_last_hour", "payment callbacks of the last hour by status",
                                     labels=["status"])  # fmt: skip
        seen = repository.payments_last_hour(conn)
        for status in ("credited", "unmatched", "rejected", "pending", "failed", "reversed"):
            payments.add_metric([status], seen.get(status, 0))
        yield payments

        dead = GaugeMetricFamily(
            "paygo_dead_letters_last_hour", "messages refused into ingest_rejects in the last hour"
        )
        dead.add_metric([], repository.dead_letters_last_hour(conn))
        yield dead

        slots, unheld = repository.ingest_slots_unheld(conn)
        s = GaugeMetricFamily("paygo_ingest_slots", "ingest slots (broker sessions) in all")
        s.add_metric([], slots)
        u = GaugeMetricFamily("paygo_ingest_slots_unheld", "ingest slots no live worker holds: their queues wait")
        u.add_metric([], unheld)
        yield from (s, u)

        started = GaugeMetricFamily("paygo_job_last_start_timestamp_seconds", "when the task last started",
                                    labels=["task"])  # fmt: skip
        succeeded = GaugeMetricFamily("paygo_job_last_success_timestamp_seconds", "when the task last succeeded",
                                      labels=["task"])  # fmt: skip
        failed_at = GaugeMetricFamily("paygo_job_last_failure_timestamp_seconds", "when the task last failed",
                                      labels=["task"])  # fmt: skip
        for run in repository.job_runs(conn):
            for family, at in ((started, run.last_started), (succeeded, run.last_succeeded),
                               (failed_at, run.last_failed)):  # fmt: skip
                family.add_metric([run.task], at.timestamp() if at else 0)
        yield from (started, succeeded, failed_at)

        lag = GaugeMetricFamily("paygo_replication_lag_seconds", "replay lag of each standby, seen from the primary",
                                labels=["standby"])  # fmt: skip
        for name, seconds in repository.replication_lag(conn):
            lag.add_metric([name], seconds)
        yield lag


def serve(settings: Settings, port: int, address: str) -> None:
    """Serve /metrics until the process is stopped."""
    from prometheus_client import start_http_server

    REGISTRY.register(PlatformCollector(settings))
    server, thread = start_http_server(port, addr=address)
    log.info("platform metrics on http://%s:%d/metrics", address, port)
    thread.join()
