"""Finance's page: the payment inbox, money waiting to be matched, and the SMS the gateway sent."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from backoffice.delivery import repository as delivery
from backoffice.deps import DbConn
from backoffice.payments import repository
from backoffice.staff.guard import Allow
from backoffice.templating import templates

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("finance", "call_centre"))])


@router.get("/payments", response_class=HTMLResponse)
def payments_page(request: Request, conn: DbConn, status: str = "") -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "payments.html",
        {
            "payments": repository.recent_inbox(conn, 200, status or None),
            "unmatched": repository.unmatched(conn, "open"),
            "sms": delivery.recent_sms(conn, 50),
            "status": status,
        },
    )
