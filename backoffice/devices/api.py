"""Staff actions on devices over the API: move OpenPAYGO Metrics units to another server, and the
extra data their answers carry."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from backoffice.deps import DbConn
from backoffice.devices import metrics
from backoffice.staff.guard import Allow, CurrentStaff

# Moving units hands them to another platform: administrators only.
router = APIRouter(prefix="/api/v1/metrics", tags=["devices"], dependencies=[Depends(Allow("admin"))])


@router.post("/move", response_model=metrics.MoveResult)
def move(body: metrics.MoveRequest, conn: DbConn, staff: CurrentStaff) -> metrics.MoveResult:
    """Send these units the ``base_url`` setting in their next answers (null cancels); audited."""
    with conn.transaction():
        return metrics.move_units(conn, body.serials, body.base_url, staff.actor)


@router.post("/extra_data", response_model=metrics.MoveResult)
def extra_data(body: metrics.ExtraDataRequest, conn: DbConn, staff: CurrentStaff) -> metrics.MoveResult:
    """Device-specific ``extra_data`` for these units' answers from now on (null: none); audited."""
    try:
        with conn.transaction():
            return metrics.set_extra_data(conn, body.serials, body.extra_data, staff.actor)
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
