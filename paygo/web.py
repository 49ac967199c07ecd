"""The web application factory: mounts every domain's routers (the back office's and the KPI package's)
on one app, behind the security headers; every route declares who may call it (``Allow`` or
``Public``, see backoffice/staff/guard.py)."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRouter
from fastapi.staticfiles import StaticFiles

from backoffice import listing
from backoffice.agents import api as agents_api
from backoffice.agents import pages as agents_pages
from backoffice.callcentre import api as callcentre_api
from backoffice.callcentre import pages as callcentre_pages
from backoffice.callcentre.schemas import AlertFact
from backoffice.config import Settings, get_settings
from backoffice.contracts import api as contracts_api
from backoffice.contracts import pages as contracts_pages
from backoffice.credit import api as credit_api
from backoffice.credit import pages as credit_pages
from backoffice.customers import api as customers_api
from backoffice.customers import pages as customers_pages
from backoffice.delivery import api as delivery_api
from backoffice.deps import RetryWhenPrimaryGone, database_answers, pool_lifespan
from backoffice.devices import api as devices_api
from backoffice.devices import metrics as devices_metrics
from backoffice.health import api as health_api
from backoffice.health import pages as health_pages
from backoffice.health import service as health
from backoffice.inventory import api as inventory_api
from backoffice.inventory import pages as inventory_pages
from backoffice.payments import api as payments_api
from backoffice.payments import pages as payments_pages
from backoffice.registry import api as registry_api
from backoffice.registry import pages as registry_pages
from backoffice.security import RefuseNul, SecurityHeaders, install_error_answers
from backoffice.sms import api as sms_api
from backoffice.staff import api as staff_api
from backoffice.staff import guard, menu
from backoffice.staff import pages as staff_pages
from backoffice.staff.privacy import PersonalData
from backoffice.templating import STATIC_DIR, UnitPanel
from backoffice.tickets import api as tickets_api
from backoffice.tickets import pages as tickets_pages
from backoffice.tickets import panel as tickets_panel
from kpi import api as kpi_api
from kpi import pages as kpi_pages

ROUTERS: list[APIRouter] = [
    staff_pages.login_router, staff_pages.account_router, staff_pages.admin_router, staff_api.router,
    registry_api.router, registry_pages.router,
    payments_api.mpesa, payments_api.callbacks, payments_api.inbox, payments_api.finance, payments_pages.router,
    payments_api.finance_v1, payments_pages.work_router, sms_api.router,
    contracts_api.router, contracts_pages.router,
    credit_api.router, credit_api.resend_router, credit_pages.router, credit_pages.resend_router,
    delivery_api.router,
    devices_api.router,
    kpi_api.router, kpi_api.v1, kpi_pages.router,
    customers_api.search_router, customers_api.router, customers_api.edit_router,
    customers_pages.search_router, customers_pages.new_router, customers_pages.router, customers_pages.edit_router,
    callcentre_api.router, callcentre_api.act_router, callcentre_pages.router, callcentre_pages.act_router,
    # field operations (issue 15); the agent's own routes before /agents/{agent_id}
    inventory_api.router, inventory_api.moves, inventory_api.keys, inventory_pages.router, inventory_pages.forms,
    agents_api.me, agents_api.router, agents_api.sales, agents_api.admin, agents_api.finance,
    agents_pages.me, agents_pages.admin, agents_pages.sales, agents_pages.router, agents_pages.finance,
    tickets_api.router, tickets_api.work, tickets_api.dispatch,
    tickets_pages.router, tickets_pages.work, tickets_pages.dispatch,
    health_api.router, health_api.acting, health_api.pages, health_pages.reading, health_pages.acting,
]  # fmt: skip
# Panels of other domains on the call centre's unit page (alerts, tickets, ...), in order: see
# backoffice.templating.UnitPanel.
UNIT_PANELS: list[UnitPanel] = [
    UnitPanel("Health: alerts, battery, collections", "panels/health.html", health.unit_panel),
    UnitPanel("Field operations", "panels/tickets.html", tickets_panel.unit_panel),
    UnitPanel("OpenPAYGO Metrics", "panels/metrics.html", devices_metrics.unit_panel),
]


def unit_alerts(conn: psycopg.Connection, unit_id: int) -> list[AlertFact]:
    """The unit's open fleet-health alerts for the unit page's first screen: the health domain says which
    kinds are the unit's faults (a technician's, or one that keeps the customer from using it)."""
    faults = health.TECHNICIAN_KINDS | health.FAULT_KINDS
    return [AlertFact(id=a.id, kind=a.kind, opened_on=a.opened_on, fault=a.kind in faults)
            for a in health.open_alerts(conn, unit_id=unit_id)]  # fmt: skip


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    # No /docs or /redoc: they load their scripts from a CDN, and every page here must work
    # offline on a slow link. The schema is served to staff at /openapi.json.
    # Bodies are capped (callbacks, forms and API calls are all small): 413 beyond, unread.
    app = FastAPI(title="PAYGO back office", version="0.1.0", lifespan=pool_lifespan(settings, "api"),
                  docs_url=None, redoc_url=None, openapi_url=None,
                  max_body_size=settings.max_callback_bytes)  # fmt: skip
    app.state.settings = settings
    app.state.unit_panels = list(UNIT_PANELS)
    app.state.unit_alerts = unit_alerts
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")  # the stylesheet: public

    ops = APIRouter(tags=["ops"], dependencies=[Depends(guard.Public("load balancers and monitoring"))])

    @ops.get("/health")
    def health() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @ops.get("/ready")
    def ready(request: Request) -> JSONResponse:
        """Readiness: the database answers too (deploy/k8s probes, the load balancer)."""
        if database_answers(request):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "database unavailable"}, 503)

    schema = APIRouter(tags=["ops"], dependencies=[Depends(guard.Allow(*guard.ANY_STAFF))])

    @schema.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    for router in [ops, schema, *ROUTERS]:
        app.include_router(router)
    menu.install(app)  # the top menu, each entry's roles read from its page's rule
    guard.install(app)
    listing.install(app)  # a list's bad page, order or filter: a 422 page naming it
    install_error_answers(app)
    # Innermost: a request that failed because the primary went away runs once more (docs/operations.md).
    app.add_middleware(RetryWhenPrimaryGone, max_body=settings.max_callback_bytes)
    app.add_middleware(PersonalData)  # customers' personal fields only to the roles that need them
    app.add_middleware(RefuseNul)
    app.add_middleware(SecurityHeaders)
    return app
