"""JSON and CSV API of the KPI snapshots (the back office mounts it under /api/kpi), and the funders'
portfolio quality and loan tape (docs/kpi_definitions.md §Q) under /api/v1/kpi."""

from __future__ import annotations

import gzip
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from backoffice import clock
from backoffice.deps import ReadConn
from backoffice.staff.guard import Allow
from kpi import repository
from kpi.cli import to_csv

router = APIRouter(prefix="/api/kpi", tags=["kpi"], dependencies=[Depends(Allow("finance", "viewer"))])
# The loan tape names no customer (an id only) and no phone number: viewers may read it as finance does.
v1 = APIRouter(prefix="/api/v1/kpi", tags=["kpi"], dependencies=[Depends(Allow("finance", "viewer"))])


def _out(s: repository.Snapshot) -> dict[str, Any]:
    return {**s.result, "computed_at": s.computed_at.isoformat(), "units_in_ledger": s.units}


def _since(conn: ReadConn, months: int) -> date:
    return (repository.latest_date(conn) or clock.today()) - timedelta(days=31 * months)


@router.get("/latest")
def latest(conn: ReadConn) -> list[dict[str, Any]]:
    """Every segment of the latest snapshot ("all" first), shaped as docs/kpi_definitions.md §4."""
    return [_out(s) for s in repository.latest(conn)]


@router.get("/snapshots/{as_of}")
def snapshot(as_of: date, conn: ReadConn) -> dict[str, Any]:
    """One as-of date: every segment, and the distributions behind the histograms."""
    rows = repository.for_date(conn, as_of)
    if not rows:
        raise HTTPException(404, f"no snapshot as of {as_of}; take one with 'paygo kpi snapshot --as-of {as_of}'")
    overall = next((s for s in rows if s.segment == "all"), rows[0])
    return {"as_of": as_of.isoformat(), "results": [_out(s) for s in rows], "distributions": overall.distributions}


@router.get("/series")
def series(conn: ReadConn, segment: str = "all", months: int = Query(24, ge=1, le=240)) -> list[dict[str, Any]]:
    """A segment's snapshots over the ``months`` months up to the latest snapshot, oldest first."""
    since = _since(conn, months)
    return [_out(s) for s in repository.series(conn, since, segment)]


@router.get("/export.csv")
def export_csv(conn: ReadConn, months: int = Query(24, ge=1, le=240), segment: str | None = None) -> Response:
    """Snapshots of the ``months`` months up to the latest as CSV, one row per as-of date and segment."""
    since = _since(conn, months)
    rows = repository.series(conn, since, segment) if segment else repository.since(conn, since)
    return Response(
        to_csv([s.result for s in rows]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="kpi-snapshots-{clock.today()}.csv"'},
    )


def _stored_date(conn: ReadConn, as_of: date | None) -> date:
    day = as_of or repository.latest_date(conn)
    if day is None:
        raise HTTPException(404, "no KPI snapshot yet; take one with 'paygo kpi snapshot'")
    return day


@v1.get("/portfolio-quality")
def portfolio_quality(
    conn: ReadConn, as_of: Annotated[date | None, Query(description="YYYY-MM-DD; default: the latest snapshot")] = None
) -> list[dict[str, Any]]:
    """docs/kpi_definitions.md §Q3 as of a snapshot's date, one object per segment ("all" first)."""
    day = _stored_date(conn, as_of)
    rows = [s for s in repository.for_date(conn, day) if "portfolio_quality" in s.result]
    if not rows:
        raise HTTPException(404, f"no portfolio-quality snapshot as of {day}; take one with "
                                 f"'paygo kpi snapshot --as-of {day}'")  # fmt: skip
    return [
        {"as_of": s.result["as_of"], "segment": s.segment, "currency": s.currency,
         "portfolio_quality": s.result["portfolio_quality"], "computed_at": s.computed_at.isoformat()}
        for s in rows
    ]  # fmt: skip


@v1.get("/loan-tape")
def loan_tape(
    request: Request,
    conn: ReadConn,
    as_of: Annotated[date | None, Query(description="YYYY-MM-DD; default: the latest tape")] = None,
) -> Response:
    """The loan tape of docs/kpi_definitions.md §Q4 (CSV, one row per unit) stored with the snapshot of that date."""
    found = repository.tape(conn, as_of)
    if found is None:
        when = f" as of {as_of}" if as_of else ""
        hint = f" --as-of {as_of}" if as_of else ""
        raise HTTPException(404, f"no loan tape{when}; take a snapshot with 'paygo kpi snapshot{hint}'")
    day, gz = found
    headers = {"Content-Disposition": f'attachment; filename="loan-tape-{day}.csv"', "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        # stored compressed: sent as it is to a client that takes gzip (a million rows: ~20 MB, not ~150)
        return Response(gz, media_type="text/csv; charset=utf-8", headers={**headers, "Content-Encoding": "gzip"})
    return Response(gzip.decompress(gz), media_type="text/csv; charset=utf-8", headers=headers)
