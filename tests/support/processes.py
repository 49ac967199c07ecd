"""Processes and servers the tests start: a free port, an ASGI app over real HTTP, ``paygo ingest
run`` as its own process, and stopping a process cleanly."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from backoffice.config import Settings
from tests.support.clock import child_env
from tests.support.wait import wait_for, wait_for_port


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, what: str = "the HTTP server") -> Iterator[str]:
    """Serve an ASGI app over real HTTP (uvicorn, in a thread of this process); yields its base URL
    once uvicorn has started and the port accepts connections."""
    port = free_port()
    # As `paygo api run` does: X-Forwarded-* believed only from the app's trusted proxies.
    settings = getattr(getattr(app, "state", None), "settings", None)
    trusted = settings.trusted_proxies if settings is not None else "127.0.0.1"
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           forwarded_allow_ips=trusted))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30, what=what)
        wait_for_port(port, timeout=30, what=what)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def ingest_group(settings: Settings) -> str:
    """The test's shared-subscription group, which also names its slots' sessions: one per topic root,
    so that every worker of a test shares the same slots and no two tests share a session."""
    return "g" + hashlib.sha1(settings.mqtt_topic_root.encode()).hexdigest()[:12]


def ingest_worker(
    settings: Settings, worker_id: str, lease_seconds: float = 4.0, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``paygo ingest run`` as its own process, on the test's database and topic root, with the test's
    slots (``ingest_group``) on short leases. It is subscribed once
    ``tests.support.wait_worker_subscribed`` returns."""
    env = child_env({**os.environ, "PAYGO_ENVIRONMENT": "test", "PAYGO_DATABASE_URL": settings.database_url,
                     "PAYGO_MQTT_TOPIC_ROOT": settings.mqtt_topic_root, "PAYGO_LOG_LEVEL": "WARNING",
                     "PAYGO_INGEST_GROUP": ingest_group(settings), "PAYGO_INGEST_LEASE_SECONDS": str(lease_seconds),
                     **(env or {})})  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "paygo.cli", "ingest", "run", "--worker-id", worker_id,
                             "--batch-size", "50", "--flush-ms", "50"], env=env)  # fmt: skip


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the worker commits and acknowledges what it holds), then wait for it."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(30)
