"""Entry point of an ingest worker process: signals, metrics port, logging."""

from __future__ import annotations

import logging
import signal
import socket
from types import FrameType

from prometheus_client import start_http_server

from backoffice.config import Settings
from ingest.consumer import IngestWorker

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    """One id per host (a pod's name on Kubernetes). The broker sessions belong to the slots, not to
    this id; a worker that comes back under the same id takes its slots back without waiting for
    their leases to lapse."""
    return f"{socket.gethostname()}-0"


def run_worker(
    settings: Settings,
    worker_id: str,
    prometheus_port: int | None = None,
    batch_size: int = 5000,
    flush_seconds: float = 0.2,
    metrics_address: str = "127.0.0.1",
) -> None:
    worker = IngestWorker(settings, worker_id, batch_size=batch_size, flush_seconds=flush_seconds)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current batch", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if prometheus_port:
        start_http_server(prometheus_port, addr=metrics_address)
        log.info("Prometheus metrics on http://%s:%d/metrics", metrics_address, prometheus_port)
    worker.run()
