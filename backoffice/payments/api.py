"""Provider-facing payment endpoints (M-Pesa C2B, MTN MoMo, signed webhooks) and finance's API.

Each endpoint reads the raw body, lets the provider's adapter parse it, and hands both to
``service.intake`` inside the request's transaction. Replies use each provider's own shapes.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from ipaddress import ip_address
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from backoffice.deps import DbConn, RawBody, RowId, SettingsDep
from backoffice.money import MoneyError, to_minor
from backoffice.payments import manual, momo, providers, repository, service
from backoffice.payments.momo import MomoClient
from backoffice.payments.providers import PaymentEvent, Rejected
from backoffice.payments.schemas import (
    AssignIn,
    AuditEntry,
    ContractHit,
    Decision,
    RefundDoneIn,
    RefundIn,
    RefundOut,
    ReleaseIn,
    WaitingPayment,
)
from backoffice.security import client_address, networks
from backoffice.staff.guard import Allow, CurrentStaff, Public

# Provider callbacks carry their own proof (M-Pesa: Safaricom's addresses at the proxy and our
# shortcode; MoMo: a request we created; webhooks: an HMAC signature), never a staff login.
callbacks = APIRouter(tags=["payment callbacks"], dependencies=[Depends(Public("providers prove their own origin"))])


def mpesa_origin(request: Request, settings: SettingsDep, secret: str | None = None) -> None:
    """M-Pesa's C2B callbacks carry no signature: they must come from an allowed source and, when a
    secret path segment is configured, arrive under it (and not without it)."""
    if settings.mpesa_path_secret and (
        secret is None or not hmac.compare_digest(secret.encode(), settings.mpesa_path_secret.encode())
    ):
        raise HTTPException(404, "Not Found")
    if settings.mpesa_allowed_sources.strip() == "*":
        return
    addr = client_address(request, settings)
    try:
        allowed = any(ip_address(addr) in net for net in networks(settings.mpesa_allowed_sources))
    except ValueError:
        allowed = False
    if not allowed:
        log.warning("M-Pesa callback refused from %s", addr)
        raise HTTPException(403, f"M-Pesa callbacks are not accepted from {addr}")


mpesa = APIRouter(
    tags=["payment callbacks"],
    dependencies=[Depends(Public("Safaricom's addresses (PAYGO_MPESA_ALLOWED_SOURCES)")), Depends(mpesa_origin)],
)
# The inbox: what arrived, for finance and for the call centre answering "did my payment arrive?".
inbox = APIRouter(tags=["payments"], dependencies=[Depends(Allow("finance", "call_centre"))])
log = logging.getLogger(__name__)
# Money moved by hand: finance only.
finance = APIRouter(tags=["payments"], dependencies=[Depends(Allow("finance"))])

# The endpoints are plain functions (FastAPI runs them in its thread pool): their database calls
# block, and a repeated callback waits on the first copy's row lock, so they must not run on the
# event loop.


def _mpesa_confirmation_answer(status: str, reason: str | None, code: str, _: int, __: list[str]) -> dict[str, Any]:
    if status == "rejected":
        return {"ResultCode": code, "ResultDesc": f"Rejected: {reason}"}
    return {"ResultCode": 0, "ResultDesc": "Success"}  # always, for anything we keep (Daraja's contract)


def _parse(parse: Any, *args: Any) -> PaymentEvent | Rejected:
    try:
        event: PaymentEvent = parse(*args)
        return event
    except Rejected as err:
        return err


@mpesa.post("/payments/mpesa/c2b/validation")
@mpesa.post("/payments/mpesa/{secret}/c2b/validation", include_in_schema=False)
def mpesa_validation(raw: RawBody, conn: DbConn, settings: SettingsDep) -> dict[str, str]:
    parsed = _parse(providers.parse_mpesa_c2b, raw, _shortcodes(settings), settings.mpesa_currency)
    with conn.transaction():  # committed before the reply goes out
        problem = service.validate(conn, "mpesa", raw, parsed)
    if problem:
        return {"ResultCode": problem.code, "ResultDesc": "Rejected"}
    return {"ResultCode": "0", "ResultDesc": "Accepted"}


@mpesa.post("/payments/mpesa/c2b/confirmation")
@mpesa.post("/payments/mpesa/{secret}/c2b/confirmation", include_in_schema=False)
def mpesa_confirmation(raw: RawBody, conn: DbConn, settings: SettingsDep) -> JSONResponse:
    parsed = _parse(providers.parse_mpesa_c2b, raw, _shortcodes(settings), settings.mpesa_currency)
    # Stored raw and committed, then processed; both before the reply (a provider may retry at once).
    outcome = service.receive(conn, "mpesa", raw, parsed, _mpesa_confirmation_answer, settings.secret_key,
                              service.Limits.from_settings(settings))  # fmt: skip
    return _reply(outcome, rejected_status=200)  # Daraja reads the ResultCode, not the HTTP status


@callbacks.post("/payments/momo/callback/{reference_id}")
@callbacks.put("/payments/momo/callback/{reference_id}", operation_id="momo_callback_for_put")
def momo_callback_for(reference_id: str, raw: RawBody, conn: DbConn, settings: SettingsDep) -> JSONResponse:
    """The callback URL we give MoMo in each request-to-pay (X-Callback-Url) names the request."""
    return momo_callback(raw, conn, settings, reference_id)


@callbacks.post("/payments/momo/callback")
@callbacks.put("/payments/momo/callback", operation_id="momo_callback_put")
def momo_callback(
    raw: RawBody, conn: DbConn, settings: SettingsDep, x_reference_id: str | None = Header(default=None)
) -> JSONResponse:
    currencies = {c.strip().upper() for c in settings.momo_currencies.split(",") if c.strip()}
    parsed = _parse(providers.parse_momo_callback, raw, x_reference_id, currencies)
    with MomoClient(settings) as client:  # believed only against our request and MTN's status API
        outcome = momo.receive_callback(conn, client, raw, parsed, settings.secret_key,
                                        service.Limits.from_settings(settings))  # fmt: skip
    return _reply(outcome)


@callbacks.post("/payments/webhook/{provider}")
def webhook(
    provider: str, raw: RawBody, conn: DbConn, settings: SettingsDep, x_signature: str | None = Header(default=None)
) -> JSONResponse:
    parsed = _parse(providers.parse_webhook, raw, provider, x_signature, settings.webhook_secrets)
    if isinstance(parsed, Rejected) and provider not in settings.webhook_secrets:
        return JSONResponse({"status": "rejected", "reason": parsed.reason}, status_code=404)
    outcome = service.receive(conn, provider, raw, parsed, service.plain_answer, settings.secret_key,
                              service.Limits.from_settings(settings))  # fmt: skip
    return _reply(outcome)


def _reply(outcome: service.Outcome, rejected_status: int = 400) -> JSONResponse:
    """The stored answer, the same for every copy of a callback; a repeat is flagged in a header."""
    headers = {"X-Duplicate": "true"} if outcome.duplicate else {}
    status = rejected_status if outcome.status == "rejected" else 200
    return JSONResponse(outcome.response, status_code=status, headers=headers)


def _shortcodes(settings: Any) -> set[str]:
    return {s.strip() for s in settings.mpesa_shortcodes.split(",") if s.strip()}


@inbox.get("/api/payments")
def recent_payments(conn: DbConn, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The payment inbox, newest first (``status``: credited, unmatched, rejected, pending, failed)."""
    return [asdict(r) for r in repository.recent_inbox(conn, min(max(limit, 1), 1000), status)]


class MomoRequestIn(BaseModel):
    """A payment to ask of a customer's MTN MoMo wallet (they approve it on their phone)."""

    account: str = Field(min_length=8, max_length=8, pattern=r"^[0-9]{8}$")
    amount: Decimal = Field(gt=0, max_digits=15, description="decimal amount in the currency, e.g. 5000")
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$")
    msisdn: str = Field(pattern=r"^[0-9]{9,15}$", description="the wallet's number, country code first")


class MomoRequestOut(BaseModel):
    reference_id: str
    status: str


@inbox.post("/api/payments/momo/requests", status_code=201)
def request_momo(
    body: MomoRequestIn, request: Request, conn: DbConn, settings: SettingsDep, staff: CurrentStaff
) -> MomoRequestOut:
    """Ask the customer's wallet for a payment; MTN calls back when they approve or decline."""
    try:
        amount = to_minor(body.amount, body.currency)
    except MoneyError as err:
        raise HTTPException(422, str(err)) from None
    base = settings.public_url or f"http://127.0.0.1:{settings.api_port}"
    try:
        with MomoClient(settings) as client:
            reference = momo.request_payment(conn, client, base.rstrip("/"), body.account, amount,
                                             body.currency.upper(), body.msisdn, staff.actor)  # fmt: skip
    except service.ResolutionError as err:
        raise HTTPException(409, str(err)) from None
    except momo.MomoError as err:
        raise HTTPException(502, str(err)) from None
    return MomoRequestOut(reference_id=reference, status="pending")


class ManualPayment(BaseModel):
    """A payment finance staff enter by hand (cash at an agent, a bank transfer)."""

    reference: str = Field(min_length=1, max_length=64, description="receipt or bank reference: the idempotency key")
    account: str
    amount: Decimal = Field(description="decimal amount in the currency, e.g. 1500.00")
    currency: str = Field(min_length=3, max_length=3)
    paid_at: datetime | None = None
    reason: str | None = Field(default=None, max_length=500, description="why it is entered by hand (audited)")


@finance.post("/api/payments/manual")
def manual_payment(payment: ManualPayment, conn: DbConn, settings: SettingsDep, staff: CurrentStaff) -> JSONResponse:
    raw = payment.model_dump_json().encode()
    entry = manual.ManualEntry(payment.reference, payment.account, payment.amount, payment.currency,
                               payment.paid_at, payment.reason)  # fmt: skip
    with conn.transaction():
        outcome = manual.record(conn, entry, raw, staff.actor, settings.secret_key)
    return _reply(outcome)


@finance.get("/api/unmatched")
def list_unmatched(conn: DbConn, state: str | None = "open") -> list[dict[str, Any]]:
    """Money that matched no account, for finance to assign or refund."""
    return [asdict(u) for u in repository.unmatched(conn, state)]


class Resolution(BaseModel):
    account: str | None = Field(default=None, description="the contract's account number (assign)")
    note: str | None = None


@finance.post("/api/unmatched/{unmatched_id}/assign")
def assign(
    unmatched_id: RowId, body: Resolution, conn: DbConn, settings: SettingsDep, staff: CurrentStaff
) -> dict[str, Any]:
    if not body.account:
        raise HTTPException(422, "give the account number to credit")
    try:
        with conn.transaction():
            credited = service.assign_unmatched(conn, unmatched_id, body.account, staff.actor, settings.secret_key,
                                                body.note)  # fmt: skip
    except service.ResolutionError as err:
        raise HTTPException(409, str(err)) from None
    return {"status": "assigned", "days_added": credited.days_added, "tokens": [t["token"] for t in credited.tokens]}


@finance.post("/api/unmatched/{unmatched_id}/refund")
def refund(unmatched_id: RowId, body: Resolution, conn: DbConn, staff: CurrentStaff) -> dict[str, Any]:
    if not (body.note or "").strip():
        raise HTTPException(422, "a refund needs a reason (note)")
    try:
        with conn.transaction():
            service.refund_unmatched(conn, unmatched_id, staff.actor, body.note or "")
    except service.ResolutionError as err:
        raise HTTPException(409, str(err)) from None
    return {"status": "refunded"}


# Finance's work on money waiting for a decision (the page /payments/waiting does the same): list,
# assign, release, refund, and the audit trail of each decision. Each decision is taken once: a
# second (or concurrent) one is refused with 409 and changes nothing.
finance_v1 = APIRouter(prefix="/api/v1/payments", tags=["finance"], dependencies=[Depends(Allow("finance"))])
Limit = Annotated[int, Query(ge=1, le=1000)]


@finance_v1.get("/unmatched", response_model=list[WaitingPayment])
def v1_unmatched(conn: DbConn, limit: Limit = 200) -> list[WaitingPayment]:
    """Money that matched no account, oldest first: assign it to a contract or refund it."""
    return [WaitingPayment.of(u) for u in repository.unmatched(conn, "open", kind="unmatched", limit=limit)]


@finance_v1.get("/held", response_model=list[WaitingPayment])
def v1_held(conn: DbConn, limit: Limit = 200) -> list[WaitingPayment]:
    """Payments the hostile-input rules held (above the ceiling, dated out of the window): release or refund."""
    return [WaitingPayment.of(u) for u in repository.unmatched(conn, "open", kind="held", limit=limit)]


@finance_v1.get("/ended-contract", response_model=list[WaitingPayment])
def v1_ended_contract(conn: DbConn, limit: Limit = 200) -> list[WaitingPayment]:
    """Money paid to a contract that has ended (repossessed, written off, returned), which it would buy
    nothing for: assign it to the right contract or refund it."""
    return [WaitingPayment.of(u) for u in repository.unmatched(conn, "open", kind="ended-contract", limit=limit)]


@finance_v1.get("/contracts", response_model=list[ContractHit])
def v1_find_contracts(
    conn: DbConn, q: Annotated[str, Query(min_length=2, max_length=100, description="account, serial, phone or name")]
) -> list[ContractHit]:
    """Contracts to assign money to, by account number, serial, phone or part of the customer's name."""
    return [ContractHit.of(h) for h in repository.find_contracts(conn, q)]


def _decided(fn: Callable[[], Decision]) -> Decision:
    try:
        return fn()
    except service.ResolutionError as err:
        raise HTTPException(409, str(err)) from None


@finance_v1.post("/waiting/{item_id}/assign", response_model=Decision)
def v1_assign(item_id: RowId, body: AssignIn, conn: DbConn, settings: SettingsDep, staff: CurrentStaff) -> Decision:
    """Credit a waiting payment (unmatched or held) to the contract with this account number."""

    def do() -> Decision:
        with conn.transaction():
            credited = service.assign_unmatched(
                conn, item_id, body.account, staff.actor, settings.secret_key, body.note
            )
            return service.decision(conn, item_id, "assigned", credited)

    return _decided(do)


@finance_v1.post("/waiting/{item_id}/release", response_model=Decision)
def v1_release(item_id: RowId, body: ReleaseIn, conn: DbConn, settings: SettingsDep, staff: CurrentStaff) -> Decision:
    """Let a held payment through: credited to the account it was paid to, as if just received."""

    def do() -> Decision:
        with conn.transaction():
            credited = service.release_held(conn, item_id, staff.actor, settings.secret_key, body.note)
            return service.decision(conn, item_id, "released", credited)

    return _decided(do)


@finance_v1.post("/waiting/{item_id}/refund", response_model=Decision)
def v1_refund(item_id: RowId, body: RefundIn, conn: DbConn, staff: CurrentStaff) -> Decision:
    """Decide to send the money back (a reason is required). Recorded as 'to refund': the platform
    calls no provider; mark it refunded once the money has gone back."""

    def do() -> Decision:
        with conn.transaction():
            refund_id = service.refund_unmatched(conn, item_id, staff.actor, body.reason)
            return service.decision(conn, item_id, "refunded", refund_id=refund_id)

    return _decided(do)


@finance_v1.get("/waiting/{item_id}/trail", response_model=list[AuditEntry])
def v1_item_trail(item_id: RowId, conn: DbConn) -> list[AuditEntry]:
    """The audit trail of one waiting (or decided) payment: held or unmatched, then finance's decision."""
    found = repository.unmatched(conn, None, item_id=item_id)
    if not found:
        raise HTTPException(404, f"no unmatched or held payment {item_id}")
    return service.payment_trail(conn, found[0].inbox_id)


@finance_v1.get("/decisions", response_model=list[AuditEntry])
def v1_decisions(conn: DbConn, limit: Limit = 100) -> list[AuditEntry]:
    """The audit trail of all payments, newest first."""
    return service.payment_trail(conn, None, limit)


@finance_v1.get("/refunds", response_model=list[RefundOut])
def v1_refunds(
    conn: DbConn, state: Annotated[Literal["to_refund", "refunded"] | None, Query()] = None, limit: Limit = 200
) -> list[RefundOut]:
    """Refund decisions, newest first: ``to_refund`` (the money is still here) or ``refunded``."""
    return [RefundOut.of(r) for r in repository.refunds(conn, state, limit)]


@finance_v1.post("/refunds/{refund_id}/done", response_model=RefundOut)
def v1_refund_done(refund_id: RowId, body: RefundDoneIn, conn: DbConn, staff: CurrentStaff) -> RefundOut:
    """The money of a refund went back (by hand, outside the platform): written down once."""
    try:
        with conn.transaction():
            return RefundOut.of(service.mark_refunded(conn, refund_id, staff.actor, body.reference))
    except service.ResolutionError as err:
        raise HTTPException(409 if "already" in str(err) else 404, str(err)) from None
