"""JSON API of the registry: units and the platform's counters."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from backoffice.deps import DbConn
from backoffice.registry import repository
from backoffice.staff.guard import Allow

router = APIRouter(prefix="/api", tags=["registry"], dependencies=[Depends(Allow("call_centre", "finance", "viewer"))])


@router.get("/units")
def list_units(conn: DbConn, q: str = "", limit: int = 100) -> list[dict[str, Any]]:
    return [asdict(u) for u in repository.list_units(conn, q.strip(), min(max(limit, 1), 1000))]


@router.get("/units/{serial}")
def get_unit(serial: str, conn: DbConn) -> dict[str, Any]:
    unit = repository.get_unit(conn, serial)
    if unit is None:
        raise HTTPException(404, f"no unit with serial {serial!r}; search by name, phone or account at /api/units?q=")
    return asdict(unit)


@router.get("/stats")
def stats(conn: DbConn) -> dict[str, int]:
    return repository.counts(conn)
