"""The device-facing HTTP endpoint (its own process and port, apart from the staff-facing app):
OpenPAYGO Metrics ``POST /dd``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from backoffice.config import Settings
from backoffice.deps import DbConn, RawBody, pool_lifespan
from ingest import openpaygo_metrics


def create_device_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="PAYGO device API",
        lifespan=pool_lifespan(settings, "device-api"),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.post("/dd")
    def dd(raw: RawBody, conn: DbConn) -> JSONResponse:
        with conn.transaction():  # committed before the answer
            answer = openpaygo_metrics.handle(conn, raw, settings.secret_key)
        return JSONResponse(answer.body, status_code=answer.status)

    return app
