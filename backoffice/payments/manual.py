"""A payment finance enter by hand (cash at an agent, a bank transfer): the one rule for the API
(``POST /api/payments/manual``) and the page (``/payments/manual``). The reference is the idempotency
key (``payment_inbox`` is unique on (provider, transaction id)): entered twice, it is credited once
and the second entry answers what the first did. The caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import psycopg

from backoffice import clock
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.money import MoneyError, to_minor
from backoffice.payments import service
from backoffice.payments.providers import PaymentEvent, Rejected


@dataclass(frozen=True)
class ManualEntry:
    reference: str  # receipt or bank reference: the idempotency key
    account: str
    amount: Decimal
    currency: str
    paid_at: datetime | None = None  # None: now
    reason: str | None = None  # why it is entered by hand (the page asks for it; kept in the audit trail)


def event(entry: ManualEntry, actor: Actor) -> PaymentEvent | Rejected:
    """The payment event of an entry, or why it is refused (kept as a rejected payment like any other)."""
    try:
        if entry.amount <= 0:
            raise Rejected(f"amount {entry.amount} must be positive", txn_id=entry.reference)
        amount = to_minor(entry.amount, entry.currency)
        paid_at = entry.paid_at or clock.utc_now()
        if paid_at.tzinfo is None:
            raise Rejected("paid_at needs a time zone offset", txn_id=entry.reference)
        return PaymentEvent("manual", entry.reference, entry.account.strip(), amount, entry.currency.upper(),
                            paid_at.astimezone(UTC), payer=actor.name)  # fmt: skip
    except MoneyError as err:
        return Rejected(str(err), txn_id=entry.reference)
    except Rejected as err:
        return err


def record(conn: psycopg.Connection, entry: ManualEntry, raw: bytes, actor: Actor, secret_key: str) -> service.Outcome:
    """Take the payment in (credited, unmatched or rejected, like a callback) and write who entered it and
    why; a repeated reference credits nothing and answers the first outcome (``duplicate``)."""
    outcome = service.intake(conn, "manual", raw, event(entry, actor), service.plain_answer, secret_key)
    reason = " ".join((entry.reason or "").split()) or None
    audit.record(conn, actor, "manual-entry", "payment", outcome.inbox_id,
                 after={"reference": entry.reference, "reason": reason, "duplicate": outcome.duplicate})  # fmt: skip
    return outcome
