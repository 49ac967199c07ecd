"""Finance's pages: the payment inbox, money waiting to be matched, and the SMS the gateway sent
(``/payments``, read-only, also for the call centre); the work page where finance assigns, releases
and refunds what waits, with suggestions for unmatched money (``/payments/waiting``); a manual payment
(``/payments/manual``), a MoMo request-to-pay (``/payments/momo``, also for the call centre) and a
provider statement's import (``/payments/statement``): docs/finance_pages.md."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi import Form as FormField
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from backoffice import clock
from backoffice.config import Settings
from backoffice.delivery import repository as delivery
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.listing import listed
from backoffice.money import MoneyError, to_minor
from backoffice.payments import inbox_repository, manual, momo, repository, service, suggest
from backoffice.payments.api import ManualPayment, MomoRequestIn
from backoffice.payments.momo import MomoClient
from backoffice.payments.schemas import ContractHit, Decision, RefundOut, WaitingPayment, money_text
from backoffice.payments.statement import StatementError, limits_of, read_uploaded, reconcile
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
    hits = [ContractHit.of(h) for h in suggest.find(conn, q)] if len(q.strip()) >= 2 else []
    unmatched = repository.unmatched(conn, "open", kind="unmatched")
    ended = repository.unmatched(conn, "open", kind="ended-contract")
    # Suggestions for the oldest waiting items (a few indexed queries each); past those, "Find contract".
    ideas = {u.id: [_idea(s) for s in suggest.suggest(conn, u)] for u in (unmatched + ended)[:SUGGESTED_ITEMS]}
    return templates.TemplateResponse(
        request,
        "payments_work.html",
        {
            "unmatched": [WaitingPayment.of(u) for u in unmatched],
            "held": [WaitingPayment.of(u) for u in repository.unmatched(conn, "open", kind="held")],
            "ended": [WaitingPayment.of(u) for u in ended],
            "ideas": ideas,
            "refunds": [RefundOut.of(r) for r in repository.refunds(conn, None, 50)],
            "trail": service.payment_trail(conn, None, 50),
            "q": q, "hits": hits, "item": item, "done": done, "error": error,
        },
        status_code=status,
    )  # fmt: skip


SUGGESTED_ITEMS = 100


def _idea(s: suggest.Suggestion) -> dict[str, Any]:
    return {"hit": ContractHit.of(_hit(s.candidate)), "score": s.score, "reasons": s.reasons}


def _hit(c: repository.Candidate) -> repository.ContractHit:
    return repository.ContractHit(c.account_number, c.customer, c.phone, c.serial, c.state, c.currency, c.paid_total,
                                  c.credit_end)  # fmt: skip


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


@work_router.get("/payments/waiting/{item_id}/assign", response_class=HTMLResponse)
def assign_confirmation(
    request: Request, item_id: RowId, conn: DbConn, account: Annotated[str, Query(max_length=32)] = "",
) -> Response:  # fmt: skip
    """The confirmation before an assignment: the payment's own amount, and the contract it would go to."""
    found = repository.unmatched(conn, None, item_id=item_id)
    if not found or found[0].state != "open":
        why = (
            f"no unmatched or held payment {item_id}" if not found else f"payment {item_id} is already {found[0].state}"
        )
        return _work_page(request, conn, error=why, status=404 if not found else 409)
    item = found[0]
    target = repository.candidates_by_account(conn, [account.strip()]) if account.strip() else []
    ideas = [s for s in suggest.suggest(conn, item) if target and s.candidate.contract_id == target[0].contract_id]
    return templates.TemplateResponse(request, "payment_assign.html", {
        "item": WaitingPayment.of(item), "account": account.strip(),
        "target": ContractHit.of(_hit(target[0])) if target else None,
        "reasons": ideas[0].reasons if ideas else [],
        "problem": None if target else _why_not(conn, account.strip()),
    })  # fmt: skip


def _why_not(conn: psycopg.Connection, account: str) -> str:
    if not account:
        return "give the account number of the contract to credit"
    found = service.match_account(conn, account)
    return found if isinstance(found, str) else f"no contract has account number {account!r}"


@work_router.post("/payments/waiting/{item_id}/assign")
def assign_from_page(
    request: Request, item_id: RowId, conn: DbConn, settings: SettingsDep, staff: CurrentStaff,
    account: Form = None, note: Form = None,
) -> Response:  # fmt: skip
    def act() -> str:
        if not (account or "").strip():
            raise service.ResolutionError("give the account number of the contract to credit")
        credited = service.assign_unmatched(conn, item_id, account or "", staff.actor, settings.secret_key, note)
        item = repository.unmatched(conn, None, item_id=item_id)[0]
        paid = money_text(item.amount, item.currency)
        return (f"Payment #{item_id} assigned: its {paid} credited to {(account or '').strip()}; "
                f"{_credited_text(service.decision(conn, item_id, 'assigned', credited))}.")  # fmt: skip

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


# --- Tasks that needed the API or the CLI (issue 26): a manual payment, a MoMo request, a statement ------


def _form_page(request: Request, template: str, values: dict[str, Any], *, done: str | None = None,
               error: str | None = None, status: int = 200, **more: Any) -> HTMLResponse:  # fmt: skip
    return templates.TemplateResponse(request, template, {"v": values, "done": done, "error": error, **more},
                                      status_code=status)  # fmt: skip


def _invalid(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in err.errors())


@work_router.get("/payments/manual", response_class=HTMLResponse)
def manual_page(request: Request, settings: SettingsDep, done: Annotated[str, Query(max_length=300)] = "") -> Response:
    return _form_page(request, "payment_manual.html", {"currency": settings.mpesa_currency}, done=done or None)


@work_router.post("/payments/manual")
def manual_from_page(
    request: Request, conn: DbConn, settings: SettingsDep, staff: CurrentStaff, reference: Form = None,
    account: Form = None, amount: Form = None, currency: Form = None, paid_at: Form = None, reason: Form = None,
) -> Response:  # fmt: skip
    values = {"reference": reference or "", "account": account or "", "amount": amount or "", "reason": reason or "",
              "currency": currency or settings.mpesa_currency, "paid_at": paid_at or ""}  # fmt: skip
    page = partial(_form_page, request, "payment_manual.html", values)
    try:
        when = datetime.fromisoformat(paid_at).replace(tzinfo=clock.company_zone()) if paid_at else None
    except ValueError:
        return page(error=f"{paid_at!r} is not a date and time", status=400)
    try:
        amount_given = Decimal((amount or "").strip().replace(",", ""))
    except ArithmeticError:
        return page(error=f"{amount or ''!r} is not an amount", status=400)
    if not (reason or "").strip():
        return page(error="say why the payment is entered by hand (the reason is kept in the audit trail)", status=400)
    try:
        body = ManualPayment(reference=(reference or "").strip(), account=(account or "").strip(), amount=amount_given,
                             currency=(currency or "").strip(), paid_at=when, reason=reason)  # fmt: skip
    except ValidationError as err:
        return page(error=_invalid(err), status=400)
    entry = manual.ManualEntry(body.reference, body.account, body.amount, body.currency, body.paid_at, body.reason)
    with conn.transaction():
        outcome = manual.record(conn, entry, body.model_dump_json().encode(), staff.actor, settings.secret_key)
    what = f"{body.amount} {body.currency.upper()}"
    if outcome.duplicate:
        done = (f"Reference {body.reference} was entered before (payment #{outcome.inbox_id}, {outcome.status}): "
                "nothing was credited twice.")  # fmt: skip
    elif outcome.status == "credited":
        done = f"Payment #{outcome.inbox_id}: {what} credited to {body.account} (reference {body.reference})."
    elif outcome.status == "unmatched":
        done = (f"Payment #{outcome.inbox_id}: {what} recorded, but {outcome.reason}: it waits under Money waiting "
                "for you to assign it.")  # fmt: skip
    else:
        return page(error=f"payment #{outcome.inbox_id} was kept as {outcome.status}: {outcome.reason}", status=422)
    return RedirectResponse(f"/payments/manual?{urlencode({'done': done})}", status_code=303)


def _momo_currencies(settings: Settings) -> list[str]:
    return [c.strip().upper() for c in settings.momo_currencies.split(",") if c.strip()]


@router.get("/payments/momo", response_class=HTMLResponse)
def momo_page(request: Request, settings: SettingsDep, done: Annotated[str, Query(max_length=300)] = "") -> Response:
    return _form_page(request, "payment_momo.html", {}, done=done or None, currencies=_momo_currencies(settings))


@router.post("/payments/momo")
def momo_from_page(
    request: Request, conn: DbConn, settings: SettingsDep, staff: CurrentStaff, account: Form = None,
    amount: Form = None, currency: Form = None, msisdn: Form = None,
) -> Response:  # fmt: skip
    values = {"account": account or "", "amount": amount or "", "currency": currency or "", "msisdn": msisdn or ""}
    page = partial(_form_page, request, "payment_momo.html", values, currencies=_momo_currencies(settings))
    try:
        body = MomoRequestIn(account=(account or "").strip(), amount=Decimal((amount or "").strip().replace(",", "")),
                             currency=(currency or "").strip(),
                             msisdn="".join(ch for ch in (msisdn or "") if ch not in " +-()"))  # fmt: skip
        minor = to_minor(body.amount, body.currency)
    except ValidationError as err:
        return page(error=_invalid(err), status=400)
    except (ArithmeticError, ValueError):
        return page(error=f"{amount!r} is not an amount", status=400)
    except MoneyError as err:
        return page(error=str(err), status=400)
    base = settings.public_url or f"http://127.0.0.1:{settings.api_port}"
    try:
        with MomoClient(settings) as client:
            reference = momo.request_payment(conn, client, base.rstrip("/"), body.account, minor,
                                             body.currency.upper(), body.msisdn, staff.actor)  # fmt: skip
    except service.ResolutionError as err:
        return page(error=str(err), status=409)
    except momo.MomoError as err:
        return page(error=str(err), status=502)
    done = (f"Asked {body.msisdn} for {money_text(minor, body.currency.upper())} to account {body.account} "
            f"(reference {reference}): the customer approves on their phone; the payment then shows in the "
            "inbox.")  # fmt: skip
    return RedirectResponse(f"/payments/momo?{urlencode({'done': done})}", status_code=303)


MAX_STATEMENT_BYTES = 20 * 1024 * 1024


def _providers(settings: Settings) -> list[str]:
    return ["mpesa", *sorted(settings.webhook_secrets)]


@work_router.get("/payments/statement", response_class=HTMLResponse)
def statement_page(request: Request, settings: SettingsDep) -> Response:
    return _form_page(request, "payment_statement.html", {"provider": "mpesa"}, providers=_providers(settings))


@work_router.post("/payments/statement")
def statement_from_page(
    request: Request, conn: DbConn, settings: SettingsDep, staff: CurrentStaff, provider: Form = None,
    statement: Annotated[UploadFile | None, File()] = None,
) -> Response:  # fmt: skip
    page = partial(_form_page, request, "payment_statement.html", {"provider": provider or "mpesa"},
                   providers=_providers(settings))  # fmt: skip
    if provider not in _providers(settings):
        return page(error=f"choose whose statement it is ({', '.join(_providers(settings))})", status=400)
    if statement is None or not statement.filename:
        return page(error="choose the statement's CSV file", status=400)
    data = statement.file.read(MAX_STATEMENT_BYTES + 1)
    if len(data) > MAX_STATEMENT_BYTES:
        return page(error=f"the file is larger than {MAX_STATEMENT_BYTES // 1024 // 1024} MB: split it", status=400)
    try:
        lines = read_uploaded(data, statement.filename, provider)
        with conn.transaction():
            report = reconcile(conn, provider, lines, staff.actor, settings.secret_key, limits_of(settings))
    except StatementError as err:
        return page(error="the statement was refused and nothing was imported", problems=err.errors, status=400)
    return page(report=report, filename=statement.filename)
