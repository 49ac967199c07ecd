"""FastAPI dependencies: the request owns its transaction (committed on success, rolled back on error)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, Path, Request
from psycopg_pool import ConnectionPool

from backoffice.config import Settings
from backoffice.db import make_pool


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:  # commits when the block ends cleanly, rolls back on exception
        yield conn


async def _raw_body(request: Request) -> bytes:
    return await request.body()


def pool_lifespan(settings: Settings, application_name: str) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """An app's lifespan: a connection pool on ``app.state.pool`` for as long as the app serves."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = make_pool(settings, application_name, min_size=1, max_size=10)
        try:
            yield
        finally:
            app.state.pool.close()

    return lifespan


# scope="function": the transaction ends (committed) when the route returns, before the answer is sent,
# so a page that redirects after a form post never shows the state from before it.
DbConn = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]
# The request body as bytes, exactly as sent (callbacks are stored raw and signatures cover the bytes).
RawBody = Annotated[bytes, Depends(_raw_body)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# A row's id in a path: within PostgreSQL's bigint, so an absurd id is a 422, never a database error.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


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
