"""What the tests share: counting rows, waiting on real events (a SUBACK, a port, a row) instead of
sleeping, the processes and servers tests start, and the contracts they set up.

Import from here (``from tests.support import count, wait_for``); the money-loop helpers of the
back-office tests are in ``tests.support.money``."""

from tests.support.contracts import lamp_contract
from tests.support.db import count
from tests.support.mqtt import Subacks, ingest_worker_thread, wait_worker_subscribed
from tests.support.processes import free_port, ingest_worker, serve, stop_process
from tests.support.wait import wait_for, wait_for_port

__all__ = [
    "Subacks",
    "count",
    "free_port",
    "ingest_worker",
    "ingest_worker_thread",
    "lamp_contract",
    "serve",
    "stop_process",
    "wait_for",
    "wait_for_port",
    "wait_worker_subscribed",
]
