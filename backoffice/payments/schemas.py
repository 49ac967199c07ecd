"""What finance's API answers and accepts (``/api/v1/payments/...``): money waiting for a decision,
the decisions, refunds to carry out, and contracts found for an assignment."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, JsonValue

from backoffice.credit.service import credit_day
from backoffice.money import to_decimal
from backoffice.payments import repository


def money_text(minor: int | None, currency: str | None) -> str | None:
    return None if minor is None or currency is None else f"{to_decimal(minor, currency):,} {currency}"


class WaitingPayment(BaseModel):
    """A payment waiting for finance: it matched no account (``unmatched``), a rule held it (``held``), or
    it was paid to a contract that has ended (``ended-contract``: it would buy nothing there)."""

    id: int = Field(description="the item to assign, release or refund")
    payment_id: int = Field(description="the payment in the inbox (the audit trail's entity id)")
    kind: Literal["unmatched", "held", "ended-contract"]
    state: str = Field(description="open, assigned, released, refunded or reversed")
    provider: str
    provider_txn_id: str
    account: str | None = Field(description="the account number the payer typed")
    amount: int | None = Field(description="minor units")
    currency: str | None
    amount_text: str | None
    paid_at: datetime | None
    received_at: datetime | None
    payer: str | None
    reason: str | None = Field(description="why it waits")

    @classmethod
    def of(cls, u: repository.Unmatched) -> WaitingPayment:
        return cls(id=u.id, payment_id=u.inbox_id, kind=u.kind, state=u.state, provider=u.provider,  # type: ignore[arg-type]
                   provider_txn_id=u.provider_txn_id, account=u.account, amount=u.amount, currency=u.currency,
                   amount_text=money_text(u.amount, u.currency), paid_at=u.paid_at, received_at=u.received_at,
                   payer=u.payer, reason=u.reason)  # fmt: skip


class AssignIn(BaseModel):
    account: str = Field(min_length=1, max_length=32, description="the account number of the contract to credit")
    note: str | None = Field(default=None, max_length=500)


class ReleaseIn(BaseModel):
    note: str | None = Field(default=None, max_length=500, description="what finance checked")


class RefundIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S", description="why the money goes back")


class RefundDoneIn(BaseModel):
    reference: str | None = Field(default=None, max_length=200, description="the bank or wallet reference")


class Decision(BaseModel):
    """What a decision did: the item's new state; for a credit, the contract's balance after it."""

    item_id: int
    payment_id: int
    state: Literal["assigned", "released", "refunded"]
    account: str | None = None
    days_added: int = 0
    tokens: list[str] = Field(default_factory=list)
    paid_total: int | None = Field(default=None, description="the contract's paid total after it (minor units)")
    paid_total_text: str | None = None
    credit_until: date | None = None
    refund_id: int | None = None


class RefundOut(BaseModel):
    id: int
    item_id: int
    payment_id: int
    provider: str
    provider_txn_id: str
    amount: int | None
    currency: str | None
    amount_text: str | None
    payer: str | None
    reason: str
    state: Literal["to_refund", "refunded"]
    decided_by: str
    decided_at: datetime
    refunded_by: str | None
    refunded_at: datetime | None
    reference: str | None

    @classmethod
    def of(cls, r: repository.Refund) -> RefundOut:
        return cls(id=r.id, item_id=r.unmatched_id, payment_id=r.inbox_id, provider=r.provider,
                   provider_txn_id=r.provider_txn_id, amount=r.amount, currency=r.currency,
                   amount_text=money_text(r.amount, r.currency), payer=r.payer, reason=r.reason,
                   state=r.state, decided_by=r.decided_by, decided_at=r.decided_at,  # type: ignore[arg-type]
                   refunded_by=r.refunded_by, refunded_at=r.refunded_at, reference=r.reference)  # fmt: skip


class AuditEntry(BaseModel):
    """One row of the audit trail about a payment: who decided what, when and why."""

    id: int
    at: datetime
    actor: str
    action: str
    payment_id: str | None
    before: dict[str, JsonValue] | None
    after: dict[str, JsonValue] | None
    request_id: str | None


class ContractHit(BaseModel):
    account_number: str
    customer: str
    phone: str | None
    serial: str
    state: str
    currency: str
    paid_total: int
    paid_total_text: str | None
    credit_until: date | None = Field(description="the company's day the unit's light stops (docs/credit_end.md)")

    @classmethod
    def of(cls, h: repository.ContractHit) -> ContractHit:
        return cls(account_number=h.account_number, customer=h.customer, phone=h.phone, serial=h.serial,
                   state=h.state, currency=h.currency, paid_total=h.paid_total,
                   paid_total_text=money_text(h.paid_total, h.currency),
                   credit_until=credit_day(h.credit_end))  # fmt: skip
