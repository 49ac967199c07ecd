"""Running work once more when the primary went away (backoffice/db.py, backoffice/deps.py): exactly
once, only for a failover error, with the request's body given again. The real failover (Patroni
promoting a standby under live payments) is tests/devtools/test_ha.py."""

from __future__ import annotations

import psycopg
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from backoffice.db import retry_once
from backoffice.deps import RetryWhenPrimaryGone


def _app(failures: list[Exception]) -> tuple[FastAPI, list[bytes]]:
    bodies: list[bytes] = []
    app = FastAPI()

    @app.post("/pay")
    async def pay(request: Request) -> dict[str, int]:
        bodies.append(await request.body())
        if failures:
            raise failures.pop(0)
        return {"ResultCode": 0}

    app.add_middleware(RetryWhenPrimaryGone, max_body=1024, pause=0)
    return app, bodies


def test_a_request_that_lost_the_primary_runs_once_more_with_its_body() -> None:
    app, bodies = _app([psycopg.OperationalError("server closed the connection unexpectedly")])
    with TestClient(app) as client:
        r = client.post("/pay", content=b'{"TransID": "X1"}')
    assert r.status_code == 200 and r.json() == {"ResultCode": 0}
    assert bodies == [b'{"TransID": "X1"}'] * 2


def test_only_once_more() -> None:
    gone = [psycopg.errors.AdminShutdown("terminating connection"), psycopg.OperationalError("gone again")]
    app, bodies = _app(gone)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/pay", content=b"x").status_code == 500
    assert len(bodies) == 2


def test_an_error_of_the_work_itself_is_not_run_again() -> None:
    app, bodies = _app([psycopg.errors.UniqueViolation("duplicate key")])
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/pay", content=b"x").status_code == 500
    assert len(bodies) == 1


def test_retry_once() -> None:
    calls: list[int] = []

    def work() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction")
        return 7

    assert retry_once(work, "a test", pause=0) == 7 and len(calls) == 2

    def always() -> int:
        calls.append(1)
        raise psycopg.OperationalError("connection refused")

    calls.clear()
    with pytest.raises(psycopg.OperationalError):
        retry_once(always, "a test", pause=0)
    assert len(calls) == 2
