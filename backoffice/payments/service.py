"""Intake of one provider callback: stored raw, then matched and credited exactly once.

The (provider, transaction id) pair is unique in ``payment_inbox``. A repeat — sequential or
concurrent — waits for the first copy's transaction, then answers with that copy's stored
response and credits nothing. The caller owns the transaction (the HTTP request).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from backoffice.audit import repository as audit
from backoffice.audit.schemas import SYSTEM, Actor
from backoffice.credit import service as credit
from backoffice.payments import repository
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


@dataclass
class Outcome:
    status: str  # credited | unmatched | rejected | pending | failed
    response: dict[str, Any]
    inbox_id: int
    duplicate: bool = False
    reason: str | None = None
    tokens: list[dict[str, Any]] = field(default_factory=list)


def _match(conn: psycopg.Connection, account: str) -> tuple[int, str] | str:
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
    if isinstance(parsed, PaymentEvent) and isinstance(why := _match(conn, parsed.account), str):
        problem = Rejected(why, C2B_INVALID_ACCOUNT, parsed.txn_id)
    repository.insert_validation(
        conn, provider, raw, problem.code if problem else "0", problem.reason if problem else None
    )
    return problem


def intake(
    conn: psycopg.Connection, provider: str, raw: bytes, parsed: PaymentEvent | Rejected, answer: Answer,
    secret_key: str,
) -> Outcome:  # fmt: skip
    txn = parsed.txn_id if isinstance(parsed, PaymentEvent) else parsed.txn_id
    if isinstance(parsed, Rejected) and txn is None:
        txn = f"unreadable-{uuid.uuid4()}"  # kept with its reason all the same
    assert txn is not None
    inbox_id = repository.insert_inbox(conn, provider, txn, raw)
    if inbox_id is None:
        first = repository.lock_inbox(conn, provider, txn)
        assert first is not None
        settles = isinstance(parsed, PaymentEvent) and parsed.status != "PENDING"
        if not (first.status == "pending" and settles):
            log.info("payment duplicate provider=%s txn=%s first=%s status=%s", provider, txn, first.id, first.status)
            return Outcome(first.status, first.response or {}, first.id, duplicate=True, reason=first.reason)
        # A MoMo request that was PENDING now has its result (a late callback or the poll job).
        inbox_id = first.id
        audit.record(conn, SYSTEM, "settled", "payment", inbox_id, after={"raw": raw.decode("utf-8", "replace")[:2000]})

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
        return _reverse(conn, provider, inbox_id, e, fields, answer, secret_key)

    match = _match(conn, e.account)
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

    credited = credit.apply_payment(conn, contract_id, e.amount, e.paid_at.date(), secret_key, inbox_id)
    response = answer("credited", None, "0", inbox_id, [str(t["token"]) for t in credited.tokens])
    repository.finish_inbox(conn, inbox_id, "credited", response, contract_id=contract_id, **fields)
    log.info("payment credited provider=%s txn=%s contract=%s days=%s tokens=%s", provider, txn, contract_id,
             credited.days_added, len(credited.tokens))  # fmt: skip
    return Outcome("credited", response, inbox_id, tokens=list(credited.tokens))


def _reverse(
    conn: psycopg.Connection, provider: str, inbox_id: int, e: PaymentEvent, fields: dict[str, Any], answer: Answer,
    secret_key: str,
) -> Outcome:  # fmt: skip
    """Undo a credited payment: a compensating ledger entry and less credit (the next token is smaller)."""
    assert e.reverses is not None
    original_provider = e.reverses_provider or provider
    original = repository.lock_inbox(conn, original_provider, e.reverses)
    why = None
    if original is None or original.status not in ("credited", "unmatched"):
        state = "unknown" if original is None else original.status
        why = f"reverses {original_provider}/{e.reverses}, which is {state}"
    elif original.amount != e.amount or original.currency != e.currency:
        why = f"reversal of {e.amount} {e.currency} does not match the original {original.amount} {original.currency}"
    if why or original is None:
        response = answer("rejected", why, "0", inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "rejected", response, why, **fields)
        return Outcome("rejected", response, inbox_id, reason=why)
    note = f"reversal of {original_provider}/{e.reverses}"
    if original.contract_id is not None and original.status == "credited":
        credit.apply_payment(conn, original.contract_id, -e.amount, e.paid_at.date(), secret_key, inbox_id)
    repository.set_status(conn, original.id, "reversed", f"reversed by {provider}/{e.txn_id}")
    audit.record(
        conn, SYSTEM, "reversal", "payment", original.id, after={"by": f"{provider}/{e.txn_id}", "amount": e.amount}
    )
    response = answer("credited", None, "0", inbox_id, [])
    repository.finish_inbox(conn, inbox_id, "credited", response, note, contract_id=original.contract_id, **fields)
    return Outcome("credited", response, inbox_id, reason=note)


class ResolutionError(ValueError):
    """A finance action that cannot be done as asked (the message says why)."""


def assign_unmatched(
    conn: psycopg.Connection, unmatched_id: int, account: str, actor: Actor, secret_key: str, note: str | None = None
) -> credit.Credited:
    """Finance assigns money that matched no account to a contract: it is credited now."""
    rows = repository.unmatched(conn, None, for_update_id=unmatched_id)
    if not rows:
        raise ResolutionError(f"no unmatched payment {unmatched_id}")
    u = rows[0]
    if u.state != "open":
        raise ResolutionError(f"unmatched payment {unmatched_id} is already {u.state}")
    match = _match(conn, account)
    if isinstance(match, str):
        raise ResolutionError(match)
    contract_id, currency = match
    if currency != u.currency or u.amount is None or u.paid_at is None:
        raise ResolutionError(f"the payment is in {u.currency}, account {account} in {currency}")
    credited = credit.apply_payment(conn, contract_id, u.amount, u.paid_at.date(), secret_key, u.inbox_id)
    repository.resolve_unmatched(conn, unmatched_id, "assigned", actor.name, contract_id, note)
    repository.set_status(conn, u.inbox_id, "credited", f"assigned to {account} by {actor.name}", contract_id)
    audit.record(
        conn,
        actor,
        "assign",
        "payment",
        u.inbox_id,
        before={"state": "open"},
        after={"state": "assigned", "account": account, "note": note, "days_added": credited.days_added},
    )
    return credited


def refund_unmatched(conn: psycopg.Connection, unmatched_id: int, actor: Actor, note: str) -> None:
    """Finance sends the money back (outside the platform) and closes the item."""
    rows = repository.unmatched(conn, None, for_update_id=unmatched_id)
    if not rows:
        raise ResolutionError(f"no unmatched payment {unmatched_id}")
    if rows[0].state != "open":
        raise ResolutionError(f"unmatched payment {unmatched_id} is already {rows[0].state}")
    repository.resolve_unmatched(conn, unmatched_id, "refunded", actor.name, None, note)
    audit.record(
        conn,
        actor,
        "refund",
        "payment",
        rows[0].inbox_id,
        before={"state": "open"},
        after={"state": "refunded", "note": note},
    )
