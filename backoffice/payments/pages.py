"""Finance's pages: the payment inbox, money waiting to be matched, and the SMS the gateway sent
(``/payments``, read-only, also for the call centre); the work page where finance assigns, releases
and refunds what waits (``/payments/waiting``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, get_args
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Form as FormField
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice import clock
from backoffice.delivery import repository as delivery
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.listing import listed
from backoffice.payments import inbox_repository, repository, service
from backoffice.payments.schemas import ContractHit, Decision, RefundOut, WaitingPayment
from backoffice.staff.guard import Allow, CurrentStaff
from backoffice.templating import templates

router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("finance", "call_centre"))])


@router.get("/payments", response_class=HTMLResponse)
def payments_page(
    request: Request, conn: DbConn, settings: SettingsDep,
    query: Annotated[inbox_repository.PaymentList, Depends(listed(inbox_repository.PaymentList))],
) -> HTMLResponse:  # fmt: skip
    since = clock.start_of_day(query.since, settings.timezone) if query.since else None
    until = clock.end_of_day(query.until, settings.timezone) if query.until else None
    page = inbox_repository.inbox_page(conn, query, since, until)
    return templates.TemplateResponse(
        request,
        "payments.html",
        {
            "page": page,
            "f": query,
            "payments": page.rows,
            "unmatched": repository.unmatched(conn, "open"),
            "sms": delivery.recent_sms(conn, 50),
            "status": query.status or "",
            "statuses": get_args(inbox_repository.InboxStatus),
        },
    )


# Finance's work page: the money waiting for a decision, with the buttons that take it. Each button is a
# form post (with the session's CSRF token); a decision already taken (a double click, or a colleague
# first) is refused with the reason, and nothing changes twice.
work_router = APIRouter(tags=["pages"], dependencies=[Depends(Allow("finance"))])
Form = Annotated[str | None, FormField(max_length=500)]


def _work_page(
    request: Request, conn: psycopg.Connection, *, q: str = "", item: int | None = None, done: str | None = None,
    error: str | None = None, status: int = 200,
) -> HTMLResponse:  # fmt: skip
    hits = [ContractHit.of(h) for h in repository.find_contracts(conn, q)] if len(q.strip()) >= 2 else []
    return templates.TemplateResponse(
        request,
        "payments_work.html",
        {
            "unmatched": [WaitingPayment.of(u) for u in repository.unmatched(conn, "open", kind="unmatched")],
            "held": [WaitingPayment.of(u) for u in repository.unmatched(conn, "open", kind="held")],
            "ended": [WaitingPayment.of(u) for u in repository.unmatched(conn, "open", kind="ended-contract")],
            "refunds": [RefundOut.of(r) for r in repository.refunds(conn, None, 50)],
            "trail": service.payment_trail(conn, None, 50),
            "q": q, "hits": hits, "item": item, "done": done, "error": error,
        },
        status_code=status,
    )  # fmt: skip


@work_router.get("/payments/waiting", response_class=HTMLResponse)
def work_page(
    request: Request, conn: DbConn, q: Annotated[str, Query(max_length=100)] = "",
    item: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None, done: Annotated[str, Query(max_length=300)] = "",
) -> HTMLResponse:  # fmt: skip
    return _work_page(request, conn, q=q, item=item, done=done or None)


def _act(request: Request, conn: psycopg.Connection, action: Callable[[], str]) -> Response:
    """Run a decision in its own transaction: on success back to the page (303) with what it did; when
    refused, the page again with why (409)."""
    try:
        with conn.transaction():
            done = action()
    except service.ResolutionError as err:
        return _work_page(request, conn, error=str(err), status=409)
    return RedirectResponse(f"/payments/waiting?{urlencode({'done': done})}", status_code=303)


def _credited_text(d: Decision) -> str:
    return (f"{d.paid_total_text} paid on {d.account} now, {d.days_added} day{'s' * (d.days_added != 1)} added, "
            f"credit until {d.credit_until}")  # fmt: skip


@work_router.post("/payments/waiting/{item_id}/assign")
def assign_from_page(
    request: Request, item_id: RowId, conn: DbConn, settings: SettingsDep, staff: CurrentStaff,
    account: Form = None, note: Form = None,
) -> Response:  # fmt: skip
    def act() -> str:
        if not (account or "").strip():
            raise service.ResolutionError("give the account number of the contract to credit")
        credited = service.assign_unmatched(conn, item_id, account or "", staff.actor, settings.secret_key, note)
        return f"Payment #{item_id} assigned: {_credited_text(service.decision(conn, item_id, 'assigned', credited))}."

    return _act(request, conn, act)


@work_router.post("/payments/waiting/{item_id}/release")
def release_from_page(
    request: Request, item_id: RowId, conn: DbConn, settings: SettingsDep, staff: CurrentStaff, note: Form = None
) -> Response:
    def act() -> str:
        credited = service.release_held(conn, item_id, staff.actor, settings.secret_key, note)
        return f"Payment #{item_id} released: {_credited_text(service.decision(conn, item_id, 'released', credited))}."

    return _act(request, conn, act)


@work_router.post("/payments/waiting/{item_id}/refund")
def refund_from_page(
    request: Request, item_id: RowId, conn: DbConn, staff: CurrentStaff, reason: Form = None
) -> Response:
    def act() -> str:
        refund_id = service.refund_unmatched(conn, item_id, staff.actor, reason or "")
        return (
            f"Payment #{item_id} is to be refunded (refund #{refund_id}): send the money back, then mark it refunded."
        )

    return _act(request, conn, act)


@work_router.post("/payments/refunds/{refund_id}/done")
def refund_done_from_page(
    request: Request, refund_id: RowId, conn: DbConn, staff: CurrentStaff, reference: Form = None
) -> Response:
    def act() -> str:
        service.mark_refunded(conn, refund_id, staff.actor, reference)
        return f"Refund #{refund_id} marked refunded."

    return _act(request, conn, act)
