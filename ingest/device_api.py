"""The device-facing HTTP endpoint (its own process and port, apart from the staff-facing app):
OpenPAYGO Metrics ``POST /dd``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool

from backoffice.config import Settings
from backoffice.db import make_pool
from ingest import metrics


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def create_device_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = make_pool(settings, "device-api", min_size=1, max_size=10)
        try:
            yield
        finally:
            app.state.pool.close()

    app = FastAPI(title="PAYGO device API", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/dd")
    def dd(raw: RawBody, request: Request) -> JSONResponse:
        pool: ConnectionPool = request.app.state.pool
        with pool.connection() as conn, conn.transaction():
            answer = metrics.handle(conn, raw, settings.secret_key)
        return JSONResponse(answer.body, status_code=answer.status)

    return app
