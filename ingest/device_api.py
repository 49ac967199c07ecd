"""The device-facing HTTP endpoint (its own process and port, apart from the staff-facing app):
OpenPAYGO Metrics ``POST /dd``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from backoffice.config import Settings
from backoffice.deps import DbConn, pool_lifespan
from ingest import openpaygo_metrics
from protocol.openpaygo_metrics import MAX_REQUEST_BYTES


async def _capped_body(request: Request) -> bytes:
    """The body, read no further than one byte past MAX_REQUEST_BYTES: a larger body is refused
    (413, with its start as the dead letter) without being held in memory whole."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            break
    return bytes(body[: MAX_REQUEST_BYTES + 1])


CappedBody = Annotated[bytes, Depends(_capped_body)]


def create_device_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="PAYGO device API",
        lifespan=pool_lifespan(settings, "device-api"),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.post("/dd")
    def dd(raw: CappedBody, conn: DbConn) -> JSONResponse:
        with conn.transaction():  # committed before the answer
            answer = openpaygo_metrics.handle(conn, raw, settings.secret_key)
        return JSONResponse(answer.body, status_code=answer.status)

    return app
