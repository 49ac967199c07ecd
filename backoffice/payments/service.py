"""Intake of one provider callback: stored raw, then matched and credited exactly once.

The (provider, transaction id) pair is unique in ``payment_inbox``. A repeat — sequential or
concurrent — waits for the first copy's transaction, then answers with that copy's stored
response and credits nothing. The caller owns the transaction (the HTTP request).

Over 400 lines because a payment's intake, its reversal and finance's decisions on money waiting
(assign, release, refund) share one set of rules and one lock order: apart, they would drift.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg

from backoffice import clock
from backoffice.audit import repository as audit
from backoffice.audit.schemas import SYSTEM, Actor
from backoffice.config import Settings
from backoffice.credit import service as credit
from backoffice.money import MoneyError, to_decimal, to_minor
from backoffice.payments import repository, schemas
from backoffice.payments.providers import C2B_INVALID_ACCOUNT, PaymentEvent, Rejected
from backoffice.registry import repository as registry
from backoffice.registry.service import is_valid_account_number

log = logging.getLogger(__name__)

# (status, reason, provider code, inbox id, tokens) -> the response body, stored and repeated to duplicates
Answer = Callable[[str, str | None, str, int, list[str]], dict[str, Any]]


def plain_answer(status: str, reason: str | None, code: str, inbox_id: int, tokens: list[str]) -> dict[str, Any]:
    """The JSON answer of every intake that is not M-Pesa's (MoMo, webhooks, manual, statement, polls)."""
    return {"status": status, "payment": inbox_id, **({"reason": reason} if reason else {}),
            **({"tokens": tokens} if tokens else {})}  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """When a payment is held for finance instead of credited: above its currency's ceiling (minor
    units), or dated further than ``window`` from now (a TransTime in 9999, or years back)."""

    ceilings: dict[str, int]
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        ceilings = {}
        for currency, major in settings.payment_ceilings.items():
            with contextlib.suppress(MoneyError):
                ceilings[currency.upper()] = to_minor(Decimal(major), currency)
        return cls(ceilings, timedelta(hours=settings.payment_time_window_hours))

    def hold_reason(self, e: PaymentEvent) -> str | None:
        ceiling = self.ceilings.get(e.currency)
        if ceiling is not None and e.amount > ceiling:
            limit = to_decimal(ceiling, e.currency)
            return f"{to_decimal(e.amount, e.currency)} {e.currency} is above the ceiling of {limit}"
        return self.date_reason(e)

    def date_reason(self, e: PaymentEvent) -> str | None:
        if abs(clock.utc_now() - e.paid_at) > self.window:
            return f"paid at {e.paid_at:%Y-%m-%d %H:%M} UTC, outside {self.window} of now"
        return None


@dataclass
class Outcome:
    status: str  # credited | unmatched | held | rejected | pending | failed | reversed | error
    response: dict[str, Any]
    inbox_id: int
    duplicate: bool = False
    reason: str | None = None
    tokens: list[dict[str, Any]] = field(default_factory=list)


def match_account(conn: psycopg.Connection, account: str) -> tuple[int, str] | str:
    """(contract id, currency) of the account, or why there is none."""
    if not account:
        return "no account number"
    if not is_valid_account_number(account):
        return f"account number {account!r} fails its check digit (a typo?)"
    found = registry.contract_by_account(conn, account)
    return (found.id, found.currency) if found is not None else f"no contract has account number {account!r}"


def validate(conn: psycopg.Connection, provider: str, raw: bytes, parsed: PaymentEvent | Rejected) -> Rejected | None:
    """M-Pesa validation: is this payment acceptable before the money moves? (Logged, never credited.)"""
    problem: Rejected | None = parsed if isinstance(parsed, Rejected) else None
    if isinstance(parsed, PaymentEvent) and isinstance(why := match_account(conn, parsed.account), str):
        problem = Rejected(why, C2B_INVALID_ACCOUNT, parsed.txn_id)
    repository.insert_validation(
        conn, provider, raw, problem.code if problem else "0", problem.reason if problem else None
    )
    return problem


def _txn(parsed: PaymentEvent | Rejected) -> str:
    txn = parsed.txn_id
    return txn if txn is not None else f"unreadable-{uuid.uuid4()}"  # kept with its reason all the same


def receive(
    conn: psycopg.Connection, provider: str, raw: bytes, parsed: PaymentEvent | Rejected, answer: Answer,
    secret_key: str, limits: Limits | None = None,
) -> Outcome:  # fmt: skip
    """A provider callback, as its door's entry point: the raw bytes are stored and committed first
    (so nothing that fails later can lose them), then processed in a transaction of its own; when
    processing fails, the stored row says why (status ``error``) and the error goes on to the
    caller. ``conn`` must be idle (no transaction open)."""
    txn = _txn(parsed)
    with conn.transaction():
        repository.insert_inbox(conn, provider, txn, raw, status="received")
    try:
        with conn.transaction():
            return intake(conn, provider, raw, parsed, answer, secret_key, limits, txn=txn)
    except Exception as err:
        reason = f"could not be processed: {type(err).__name__}: {str(err)[:300]}".replace("\x00", "")
        with conn.transaction():
            repository.mark_error(conn, provider, txn, reason)
        log.exception("payment processing failed provider=%s txn=%s", provider, txn)
        raise


def intake(
    conn: psycopg.Connection, provider: str, raw: bytes, parsed: PaymentEvent | Rejected, answer: Answer,
    secret_key: str, limits: Limits | None = None, txn: str | None = None,
) -> Outcome:  # fmt: skip
    """One callback in the caller's transaction: stored if new (``receive`` stores it beforehand),
    then matched, held or credited once; a copy answers what the first was answered."""
    txn = txn or _txn(parsed)
    inbox_id = repository.insert_inbox(conn, provider, txn, raw)
    if inbox_id is None:
        first = repository.lock_inbox(conn, provider, txn)
        assert first is not None
        settles = isinstance(parsed, PaymentEvent) and parsed.status != "PENDING"
        if first.status in ("received", "error"):
            # Stored by ``receive`` and not processed yet, or its processing failed (the provider retries):
            # ours to do now, under the row's lock.
            inbox_id = first.id
        elif first.status == "pending" and settles:
            # A MoMo request that was PENDING now has its result (a late callback or the poll job).
            inbox_id = first.id
            result = parsed.status if isinstance(parsed, PaymentEvent) else "rejected"
            audit.record(conn, SYSTEM, "settled", "payment", inbox_id, before={"status": "pending"},
                         after={"status": result})  # fmt: skip
        else:
            log.info("payment duplicate provider=%s txn=%s first=%s status=%s", provider, txn, first.id, first.status)
            return Outcome(first.status, first.response or {}, first.id, duplicate=True, reason=first.reason)

    if isinstance(parsed, Rejected):
        response = answer("rejected", parsed.reason, parsed.code, inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "rejected", response, parsed.reason)
        log.info("payment rejected provider=%s txn=%s reason=%s", provider, txn, parsed.reason)
        return Outcome("rejected", response, inbox_id, reason=parsed.reason)

    e = parsed
    fields: dict[str, Any] = {
        "account": e.account, "amount": e.amount, "currency": e.currency, "paid_at": e.paid_at, "payer": e.payer,
    }  # fmt: skip
    if e.status == "PENDING":
        response = answer("pending", None, "0", inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "pending", response, **fields)
        return Outcome("pending", response, inbox_id)
    if e.status == "FAILED":
        response = answer("failed", "the provider reports the payment failed", "0", inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "failed", response, "provider reported FAILED", **fields)
        return Outcome("failed", response, inbox_id)

    if e.reverses:
        # A reversal obeys the payments' time window: one dated years away would write its ledger row
        # there and re-lock the unit for years. Held for finance, whose release applies it.
        held = limits.date_reason(e) if limits is not None else None
        if held:
            held = f"a reversal of {e.reverses_provider or provider}/{e.reverses} {held}"
            response = answer("held", held, "0", inbox_id, [])
            repository.finish_inbox(conn, inbox_id, "held", response, held, **fields)
            repository.insert_unmatched(conn, inbox_id, kind="held", reverses=(e.reverses_provider or provider,
                                                                                e.reverses))  # fmt: skip
            audit.record(conn, SYSTEM, "held", "payment", inbox_id, after={"reason": held})
            log.warning("reversal held provider=%s txn=%s reason=%s", provider, txn, held)
            return Outcome("held", response, inbox_id, reason=held)
        return _reverse(conn, provider, inbox_id, e, fields, answer, secret_key)[0]

    held = limits.hold_reason(e) if limits is not None else None
    if held:
        response = answer("held", held, "0", inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "held", response, held, **fields)
        repository.insert_unmatched(conn, inbox_id, kind="held")
        audit.record(conn, SYSTEM, "held", "payment", inbox_id, after={"reason": held})
        log.warning("payment held provider=%s txn=%s reason=%s", provider, txn, held)
        return Outcome("held", response, inbox_id, reason=held)

    match = match_account(conn, e.account)
    if isinstance(match, str):
        problem = match
        response = answer("unmatched", problem, "0", inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "unmatched", response, problem, **fields)
        repository.insert_unmatched(conn, inbox_id)
        audit.record(conn, SYSTEM, "unmatched", "payment", inbox_id, after={"reason": problem})
        log.info("payment unmatched provider=%s txn=%s reason=%s", provider, txn, problem)
        return Outcome("unmatched", response, inbox_id, reason=problem)
    contract_id, currency = match
    if currency != e.currency:
        why = f"wrong currency {e.currency}: account {e.account} is in {currency}"
        response = answer("rejected", why, "C2B00013", inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "rejected", response, why, **fields)
        return Outcome("rejected", response, inbox_id, reason=why)

    try:
        credited = credit.apply_payment(conn, contract_id, e.amount, e.paid_on, secret_key, inbox_id)
    except credit.EndedContract as ended:  # it would buy nothing and earn a commission: finance decides
        why = f"{ended}; assign it to another contract or refund it"
        response = answer("held", why, "0", inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "held", response, why, **fields)
        repository.insert_unmatched(conn, inbox_id, kind="ended-contract")
        audit.record(conn, SYSTEM, "held", "payment", inbox_id, after={"reason": why, "kind": "ended-contract"})
        log.info("payment to an ended contract held provider=%s txn=%s contract=%s", provider, txn, contract_id)
        return Outcome("held", response, inbox_id, reason=why)
    response = answer("credited", None, "0", inbox_id, [str(t["token"]) for t in credited.tokens])
    repository.finish_inbox(conn, inbox_id, "credited", response, contract_id=contract_id, **fields)
    log.info("payment credited provider=%s txn=%s contract=%s days=%s tokens=%s", provider, txn, contract_id,
             credited.days_added, len(credited.tokens))  # fmt: skip
    return Outcome("credited", response, inbox_id, tokens=list(credited.tokens))


def _reverse(
    conn: psycopg.Connection, provider: str, inbox_id: int, e: PaymentEvent, fields: dict[str, Any], answer: Answer,
    secret_key: str,
) -> tuple[Outcome, credit.Credited | None]:  # fmt: skip
    """Undo a credited payment: a compensating ledger entry and less credit (the next token is smaller);
    the outcome, and what the contract's credit became when it changed."""
    assert e.reverses is not None
    original_provider = e.reverses_provider or provider
    original = None
    if original_provider != provider:  # a provider vouches for its own payments only
        why: str | None = f"{provider} cannot reverse a payment of {original_provider}"
    else:
        original = repository.lock_inbox(conn, original_provider, e.reverses)
        why = None
    if why is None and (original is None or original.status not in ("credited", "unmatched", "held", "refunded")):
        state = (
            "unknown" if original is None else "itself a reversal" if original.status == "reversal" else original.status
        )
        why = f"reverses {original_provider}/{e.reverses}, which is {state}"
    elif original is not None and (original.amount != e.amount or original.currency != e.currency):
        why = f"reversal of {e.amount} {e.currency} does not match the original {original.amount} {original.currency}"
    if why or original is None:
        response = answer("rejected", why, "0", inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "rejected", response, why, **fields)
        return Outcome("rejected", response, inbox_id, reason=why), None
    note = f"reversal of {original_provider}/{e.reverses}"
    tokens: list[str] = []
    done: credit.Credited | None = None
    if original.status == "refunded":  # finance decided to send it back; the provider has done so itself
        settled = repository.refund_settled_by_reversal(conn, original.id, f"{provider}/{e.txn_id}")
        if not settled:  # the money had already been sent back by hand: the payer has it twice
            log.warning("payment reversed after its refund was paid out provider=%s txn=%s original=%s", provider,
                        e.txn_id, original.id)  # fmt: skip
            note += "; ALREADY REFUNDED BY HAND: the payer was paid back twice, recover one"
    elif original.contract_id is not None and original.status == "credited":
        done = credit.apply_payment(conn, original.contract_id, -e.amount, e.paid_on, secret_key, inbox_id,
                                    reverses=original.id)  # fmt: skip
        tokens = [str(t["token"]) for t in done.tokens]  # a SET_TIME when the contract was paid off
    else:  # money still waiting for finance: it is gone, so is the item
        repository.close_unmatched_of(conn, original.id, "reversed", f"reversed by {provider}/{e.txn_id}")
    repository.set_status(conn, original.id, "reversed", f"reversed by {provider}/{e.txn_id}")
    audit.record(conn, SYSTEM, "reversal", "payment", original.id, before={"status": original.status},
                 after={"status": "reversed", "by": f"{provider}/{e.txn_id}", "amount": e.amount})  # fmt: skip
    response = answer("reversed", None, "0", inbox_id, tokens)
    repository.finish_inbox(conn, inbox_id, "reversal", response, note, contract_id=original.contract_id, **fields)
    return Outcome("reversed", response, inbox_id, reason=note), done


class ResolutionError(ValueError):
    """A finance action that cannot be done as asked (the message says why)."""


def _open_item(conn: psycopg.Connection, item_id: int) -> repository.Unmatched:
    """The waiting item, its payment row locked first (the order a reversal locks them in too)."""
    repository.lock_payment_of_unmatched(conn, item_id)
    rows = repository.unmatched(conn, None, for_update_id=item_id)
    if not rows:
        raise ResolutionError(f"no unmatched or held payment {item_id}")
    if rows[0].state != "open":
        raise ResolutionError(f"payment {item_id} is already {rows[0].state}")
    return rows[0]


def _claim(conn: psycopg.Connection, item_id: int, state: str, actor: Actor, contract_id: int | None,
           note: str | None) -> None:  # fmt: skip
    """The item leaves 'open' once only: the database refuses a second decision (``where state = 'open'``),
    whatever the code above it checked."""
    if not repository.resolve_unmatched(conn, item_id, state, actor.name, contract_id, note):
        raise ResolutionError(f"payment {item_id} was decided meanwhile")


def _credit(
    conn: psycopg.Connection, u: repository.Unmatched, account: str, state: str, actor: Actor, secret_key: str,
    note: str | None,
) -> credit.Credited:  # fmt: skip
    if u.reverses is not None:
        raise ResolutionError(f"payment {u.id} is a reversal of {u.reverses_provider}/{u.reverses}, not money: "
                              "release it to apply the reversal once the provider confirms it")  # fmt: skip
    match = match_account(conn, account)
    if isinstance(match, str):
        raise ResolutionError(match)
    contract_id, currency = match
    if currency != u.currency or u.amount is None or u.paid_at is None:
        raise ResolutionError(f"the payment is in {u.currency}, account {account} in {currency}")
    row = conn.execute("select state from contracts where id = %s", (contract_id,)).fetchone()
    if row is None or row[0] not in ("active", "paid_off"):
        raise ResolutionError(f"account {account} is {row[0] if row else 'unknown'}: its money would buy nothing; "
                              "refund the payment instead")  # fmt: skip
    _claim(conn, u.id, state, actor, contract_id, note)
    # Credited from the day it was paid, never from a date still to come (a held payment may claim one).
    paid_on = min(clock.business_day(u.paid_at), clock.today())
    try:
        credited = credit.apply_payment(conn, contract_id, u.amount, paid_on, secret_key, u.inbox_id)
    except credit.EndedContract as ended:  # ended meanwhile
        raise ResolutionError(f"{ended}; refund the payment instead") from None
    verb = "assigned to" if state == "assigned" else "released to"
    repository.set_status(conn, u.inbox_id, "credited", f"{verb} {account} by {actor.name}", contract_id)
    audit.record(
        conn, actor, "assign" if state == "assigned" else "release", "payment", u.inbox_id,
        before={"state": "open", "kind": u.kind, "reason": u.reason},
        after={"state": state, "item": u.id, "account": account, "note": note, "days_added": credited.days_added},
    )  # fmt: skip
    return credited


def assign_unmatched(
    conn: psycopg.Connection, unmatched_id: int, account: str, actor: Actor, secret_key: str, note: str | None = None
) -> credit.Credited:
    """Finance assigns money that matched no account (or a held payment) to a contract: credited now."""
    u = _open_item(conn, unmatched_id)
    return _credit(conn, u, account.strip(), "assigned", actor, secret_key, note)


def _release_reversal(
    conn: psycopg.Connection, u: repository.Unmatched, actor: Actor, secret_key: str, note: str | None
) -> credit.Credited | None:
    """Finance checked a held reversal with the provider: applied now, its ledger row dated today."""
    assert u.reverses is not None and u.amount is not None and u.currency is not None
    _claim(conn, u.id, "released", actor, None, note)
    e = PaymentEvent(u.provider, u.provider_txn_id, u.account or "", u.amount, u.currency, clock.utc_now(),
                     payer=u.payer, reverses=u.reverses, reverses_provider=u.reverses_provider)  # fmt: skip
    fields: dict[str, Any] = {"account": u.account, "amount": u.amount, "currency": u.currency,
                              "paid_at": u.paid_at, "payer": u.payer}  # fmt: skip
    outcome, done = _reverse(conn, u.provider, u.inbox_id, e, fields, plain_answer, secret_key)
    if outcome.status != "reversed":
        raise ResolutionError(f"the reversal cannot be applied: {outcome.reason}")
    audit.record(conn, actor, "release", "payment", u.inbox_id,
                 before={"state": "open", "kind": u.kind, "reason": u.reason},
                 after={"state": "released", "item": u.id, "reversal": f"{u.reverses_provider}/{u.reverses}",
                        "note": note})  # fmt: skip
    return done


def release_held(
    conn: psycopg.Connection, item_id: int, actor: Actor, secret_key: str, note: str | None = None
) -> credit.Credited | None:
    """Finance checked a held payment and lets it through: credited to the account it was paid to,
    as if it had just been received (a held payment whose account matches nothing is assigned instead)."""
    u = _open_item(conn, item_id)
    if u.kind == "ended-contract":
        raise ResolutionError(f"payment {item_id} was paid to an ended contract ({u.account}): released there it "
                              "would buy nothing; assign it to another contract or refund it")  # fmt: skip
    if u.kind != "held":
        raise ResolutionError(f"payment {item_id} is not held but unmatched: assign it to a contract")
    if u.reverses is not None:
        return _release_reversal(conn, u, actor, secret_key, note)
    if not u.account:
        raise ResolutionError(f"payment {item_id} names no account: assign it to a contract")
    return _credit(conn, u, u.account, "released", actor, secret_key, note)


def refund_unmatched(conn: psycopg.Connection, unmatched_id: int, actor: Actor, note: str) -> int:
    """Finance decides to send the money back: the decision is written down in ``refunds`` ('to
    refund'; no provider's reversal API is called: the money goes back by hand and is then marked
    refunded) and the payment can never be credited. Returns the refund's id."""
    reason = " ".join((note or "").split())
    if not reason:
        raise ResolutionError("a refund needs a reason")
    u = _open_item(conn, unmatched_id)
    if u.reverses is not None:
        raise ResolutionError(f"payment {u.id} is a reversal, not money received: there is nothing to refund")
    _claim(conn, u.id, "refunded", actor, None, reason)
    refund_id = repository.insert_refund(conn, u.id, u.inbox_id, reason, actor.name)
    repository.set_status(conn, u.inbox_id, "refunded", f"to be refunded: {reason}")
    audit.record(
        conn, actor, "refund", "payment", u.inbox_id,
        before={"state": "open", "kind": u.kind, "reason": u.reason},
        after={"state": "refunded", "item": u.id, "refund": refund_id, "note": reason},
    )  # fmt: skip
    return refund_id


def mark_refunded(conn: psycopg.Connection, refund_id: int, actor: Actor, reference: str | None) -> repository.Refund:
    """The money of a refund decision went back (outside the platform): written down once."""
    reference = " ".join((reference or "").split()) or None
    done = repository.mark_refunded(conn, refund_id, actor.name, reference)
    if done is None:
        found = repository.refund(conn, refund_id)
        raise ResolutionError(f"no refund {refund_id}" if found is None else f"refund {refund_id} is already done")
    audit.record(conn, actor, "refunded", "payment", done.inbox_id, before={"refund": refund_id, "state": "to_refund"},
                 after={"refund": refund_id, "state": "refunded", "reference": reference})  # fmt: skip
    return done


def decision(
    conn: psycopg.Connection, item_id: int, state: str, credited: credit.Credited | None = None,
    refund_id: int | None = None,
) -> schemas.Decision:  # fmt: skip
    """What a decision did, with the contract's balance after it (read in the same transaction)."""
    item = repository.unmatched(conn, None, item_id=item_id)[0]
    out = schemas.Decision(item_id=item_id, payment_id=item.inbox_id, state=state, refund_id=refund_id)  # type: ignore[arg-type]
    if credited is not None:
        out.days_added, out.tokens = credited.days_added, [str(t["token"]) for t in credited.tokens]
        b = repository.balance(conn, credited.contract_id)
        if b is not None:
            out.account, out.paid_total = b.account_number, b.paid_total
            out.credit_until = credited.light_until or credit.credit_day(b.credit_end)  # as the receipt says
            out.paid_total_text = schemas.money_text(b.paid_total, b.currency)
    return out


def payment_trail(
    conn: psycopg.Connection, payment_id: int | None = None, limit: int = 100
) -> list[schemas.AuditEntry]:
    """The audit trail of the payments (or of one), newest first: held or unmatched by the platform,
    then who assigned, released or refunded it, when and why."""
    rows = audit.browse(conn, entity="payment", entity_id=None if payment_id is None else str(payment_id), limit=limit)
    return [schemas.AuditEntry(id=r.id, at=r.at, actor=r.actor, action=r.action, payment_id=r.entity_id,
                               before=r.before, after=r.after, request_id=r.request_id) for r in rows]  # fmt: skip
