"""Small helpers shared by tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from backoffice.config import Settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll until check() is true; fail the test, naming ``what``, if it never becomes true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout:g} s")


@contextmanager
def serve(app: Any, what: str = "the HTTP server") -> Iterator[str]:
    """Serve an ASGI app over real HTTP (uvicorn, in a thread of this process); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30, what=what)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def ingest_worker(settings: Settings, worker_id: str) -> subprocess.Popen[bytes]:
    """``paygo ingest run`` as its own process, on the test's database and topic root."""
    env = {**os.environ, "PAYGO_ENVIRONMENT": "test", "PAYGO_DATABASE_URL": settings.database_url,
           "PAYGO_MQTT_TOPIC_ROOT": settings.mqtt_topic_root, "PAYGO_LOG_LEVEL": "WARNING"}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "paygo.cli", "ingest", "run", "--worker-id", worker_id,
                             "--batch-size", "50", "--flush-ms", "50"], env=env)  # fmt: skip


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the worker commits and acknowledges what it holds), then wait for it."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(30)


def lamp_contract(
    conn: Any, secret_key: str, serial: str, customer: str, installed_days_ago: int
) -> tuple[int, str, int]:
    """A flexible-PAYG lamp (35 KES a day, no deposit) installed for a customer in Kisumu, in the
    caller's transaction: (contract id, the unit's OpenPAYGO key, its starting code)."""
    from datetime import UTC, date, datetime, timedelta

    from backoffice import crypto
    from backoffice.contracts import service as contracts
    from backoffice.registry import repository, service
    from backoffice.registry.schemas import NewContract

    product = repository.insert_product(conn, code="L", name="l", business_model="flexible", currency="KES",
                                        price_per_day=3_500, deposit_amount=0)  # fmt: skip
    buyer = repository.insert_customer(conn, customer, "254700000001", "Kisumu", "Kisumu", 0.0, 34.7)
    unit_id = service.register_unit(conn, secret_key, serial, product,
                                    installed_at=datetime.now(UTC) - timedelta(days=installed_days_ago))  # fmt: skip
    contract = contracts.sign_contract(conn, NewContract(buyer, unit_id, product, date.today()))
    key_enc, starting_code = conn.execute(
        "select openpaygo_key_enc, starting_code from units where id = %s", (unit_id,)
    ).fetchone()
    return contract, crypto.decrypt(secret_key, key_enc), int(starting_code)
