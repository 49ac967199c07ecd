"""JSON and CSV API of the KPI snapshots (the back office mounts it under /api/kpi)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from backoffice import clock
from backoffice.deps import DbConn
from backoffice.staff.guard import Allow
from kpi import repository
from kpi.cli import to_csv

router = APIRouter(prefix="/api/kpi", tags=["kpi"], dependencies=[Depends(Allow("finance", "viewer"))])


def _out(s: repository.Snapshot) -> dict[str, Any]:
    return {**s.result, "computed_at": s.computed_at.isoformat(), "units_in_ledger": s.units}


def _since(conn: DbConn, months: int) -> date:
    return (repository.latest_date(conn) or clock.today()) - timedelta(days=31 * months)


@router.get("/latest")
def latest(conn: DbConn) -> list[dict[str, Any]]:
    """Every segment of the latest snapshot ("all" first), shaped as kpi/SPEC.md §4."""
    return [_out(s) for s in repository.latest(conn)]


@router.get("/snapshots/{as_of}")
def snapshot(as_of: date, conn: DbConn) -> dict[str, Any]:
    """One as-of date: every segment, and the distributions behind the histograms."""
    rows = repository.for_date(conn, as_of)
    if not rows:
        raise HTTPException(404, f"no snapshot as of {as_of}; take one with 'paygo kpi snapshot --as-of {as_of}'")
    overall = next((s for s in rows if s.segment == "all"), rows[0])
    return {"as_of": as_of.isoformat(), "results": [_out(s) for s in rows], "distributions": overall.distributions}


@router.get("/series")
def series(conn: DbConn, segment: str = "all", months: int = Query(24, ge=1, le=240)) -> list[dict[str, Any]]:
    """A segment's snapshots over the ``months`` months up to the latest snapshot, oldest first."""
    since = _since(conn, months)
    return [_out(s) for s in repository.series(conn, since, segment)]


@router.get("/export.csv")
def export_csv(conn: DbConn, months: int = Query(24, ge=1, le=240), segment: str | None = None) -> Response:
    """Snapshots of the ``months`` months up to the latest as CSV, one row per as-of date and segment."""
    since = _since(conn, months)
    rows = repository.series(conn, since, segment) if segment else repository.since(conn, since)
    return Response(
        to_csv([s.result for s in rows]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="kpi-snapshots-{clock.today()}.csv"'},
    )
