"""The web application factory: mounts every domain's routers (the back office's and the KPI package's)
on one app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from backoffice.config import Settings, get_settings
from backoffice.contracts import api as contracts_api
from backoffice.credit import api as credit_api
from backoffice.credit import pages as credit_pages
from backoffice.delivery import api as delivery_api
from backoffice.deps import pool_lifespan
from backoffice.payments import api as payments_api
from backoffice.payments import pages as payments_pages
from backoffice.registry import api as registry_api
from backoffice.registry import pages as registry_pages
from backoffice.templating import STATIC_DIR
from kpi import api as kpi_api
from kpi import pages as kpi_pages


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    # No /docs or /redoc: they load their scripts from a CDN, and every page here must work
    # offline on a slow link. The schema stays at /openapi.json.
    app = FastAPI(title="PAYGO back office", version="0.1.0", lifespan=pool_lifespan(settings, "api"),
                  docs_url=None, redoc_url=None)  # fmt: skip
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(registry_api.router)
    app.include_router(registry_pages.router)
    app.include_router(payments_api.router)
    app.include_router(payments_pages.router)
    app.include_router(contracts_api.router)
    app.include_router(credit_api.router)
    app.include_router(credit_pages.router)
    app.include_router(delivery_api.router)
    app.include_router(kpi_api.router)
    app.include_router(kpi_pages.router)
    return app
