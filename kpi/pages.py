"""The back office's KPI page: the latest snapshot, 24 months of the headline KPIs, distributions, and
the funders' portfolio quality (aging, collection, write-offs, first-payment default, vintages, the tape)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from backoffice import clock
from backoffice.deps import ReadConn
from backoffice.ledger import repository as ledger
from backoffice.staff.guard import Allow
from backoffice.templating import make_templates
from kpi import repository
from kpi.report import aging_bar, histogram, series_charts, vintage_chart

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("finance", "viewer"))])
# The KPI page and the charts it shares with the stand-alone HTML report, in the back office's frame.
templates = make_templates(Path(__file__).parent / "templates")
MONTHS = 24
COLLECTION_DAYS = 30


def _month_end(d: date) -> bool:
    return (d + timedelta(days=1)).day == 1


@router.get("/kpi", response_class=HTMLResponse)
def kpi_page(request: Request, conn: ReadConn) -> HTMLResponse:
    latest = repository.latest(conn)
    end = latest[0].as_of if latest else clock.today()
    history = repository.series(conn, end - timedelta(days=31 * MONTHS))
    # Month-end snapshots make the 24-month series; the latest one ends it.
    points = [s.result for s in history if _month_end(s.as_of) or s is history[-1]]
    overall = next((s for s in latest if s.segment == "all"), None)
    dists = (overall.distributions if overall else None) or {}
    quality = overall.result.get("portfolio_quality") if overall else None  # None: a snapshot older than §Q
    # The collection rate `make demo` prints (paid over what fell due in the 30 days to the snapshot's date,
    # asset-finance contracts), shown beside PAR 30.
    received, due = ledger.collected_and_due(conn, end - timedelta(days=COLLECTION_DAYS), end)
    return templates.TemplateResponse(
        request,
        "kpi.html",
        {
            "latest": overall,
            "results": [s.result for s in latest],
            "series": series_charts(points),
            "ahead": histogram(dists.get("amount_ahead_behind")),
            "revenue": histogram(dists.get("revenue_30d")),
            "months": MONTHS,
            "quality": quality,
            "aging": aging_bar(quality),
            "vintage": vintage_chart(quality),
            "collection": {
                "rate": received / due if due else None,
                "received": received,
                "due": due,
                "days": COLLECTION_DAYS,
            },
        },
    )
