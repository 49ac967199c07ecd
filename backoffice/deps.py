"""FastAPI dependencies: the request owns its transaction (committed on success, rolled back on error)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, Path, Request
from psycopg_pool import ConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backoffice.config import Settings
from backoffice.db import make_pool, primary_gone

log = logging.getLogger(__name__)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:  # commits when the block ends cleanly, rolls back on exception
        yield conn


def get_read_conn(request: Request) -> Iterator[psycopg.Connection]:
    """A read-only connection for reads that may lag by seconds (PAYGO_DATABASE_READ_URL; the app's one
    pool when it is unset)."""
    pool: ConnectionPool = getattr(request.app.state, "read_pool", None) or request.app.state.pool
    with pool.connection() as conn:
        yield conn


async def _raw_body(request: Request) -> bytes:
    return await request.body()


def pool_lifespan(settings: Settings, application_name: str) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """An app's lifespan: a connection pool on ``app.state.pool`` for as long as the app serves."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = make_pool(settings, application_name, min_size=1, max_size=10)
        # Reads that may lag (ReadConn) get a pool of their own only when they are sent elsewhere.
        separate = bool(settings.database_read_url) and settings.read_url != settings.database_url
        app.state.read_pool = (
            make_pool(settings, application_name, min_size=1, max_size=10, read=True) if separate else None
        )
        try:
            yield
        finally:
            app.state.pool.close()
            if app.state.read_pool is not None:
                app.state.read_pool.close()

    return lifespan


# scope="function": the transaction ends (committed) when the route returns, before the answer is sent,
# so a page that redirects after a form post never shows the state from before it.
DbConn = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]
# For reads that may lag by seconds (docs/operations.md, "Reads that may lag"): a standby when
# PAYGO_DATABASE_READ_URL names one. Never for a page that must show the request's own write.
ReadConn = Annotated[psycopg.Connection, Depends(get_read_conn, scope="function")]
# The request body as bytes, exactly as sent (callbacks are stored raw and signatures cover the bytes).
RawBody = Annotated[bytes, Depends(_raw_body)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# A row's id in a path: within PostgreSQL's bigint, so an absurd id is a 422, never a database error.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class RetryWhenPrimaryGone:
    """Run a request once more when it failed because the database's primary went away (a failover:
    backoffice.db.primary_gone) before any answer was sent. The pool hands the second run a checked
    connection, which libpq's multi-host string has opened on the new leader. Safe because the doors
    that write are idempotent by their own key (a payment callback by its provider id); the body,
    at most ``max_body`` bytes (the app's own cap), is kept to be given to the second run."""

    def __init__(self, app: ASGIApp, max_body: int, pause: float = 1.0) -> None:
        self.app = app
        self.max_body = max_body
        self.pause = pause

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if not message.get("more_body", False):
                break
            if size > self.max_body:  # too big to keep: the app refuses it (413), no second run
                await self.app(scope, _replay(chunks, receive, more=True), send)
                return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _replay(chunks, receive), watch)
        except Exception as err:
            if started or not primary_gone(err):
                raise
            log.warning("%s %s: the primary went away (%s); running it once more",
                        scope.get("method"), scope.get("path"), str(err).strip()[:200])  # fmt: skip
            await asyncio.sleep(self.pause)
            await self.app(scope, _replay(chunks, receive), send)


def _replay(chunks: list[bytes], receive: Receive, more: bool = False) -> Receive:
    """A receive that gives the kept body first (then, if ``more``, the rest of the request), and
    after it whatever the server says next (a disconnect)."""
    pending = list(chunks)

    async def replay() -> Message:
        if pending:
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending) or more}
        return await receive()

    return replay


def database_answers(request: Request) -> bool:
    """Whether the app's pool gets a connection and the database answers a query within 5 s (the
    readiness probe: a pod whose database is out of reach is taken out of the load balancer)."""
    pool: ConnectionPool = request.app.state.pool
    try:
        with pool.connection(timeout=5) as conn:
            conn.execute("select 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False
