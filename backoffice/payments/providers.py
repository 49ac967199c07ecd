"""Provider adapters: raw callback bytes -> one internal ``PaymentEvent``, or a ``Rejected`` that
names the reason (and the provider's own rejection code). Pure functions, testable without HTTP.

Shapes: ../shared/reference/mobile-money.md. Amounts are parsed as Decimal, never float, and must
fit the currency's minor unit exactly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from backoffice import clock
from backoffice.money import MoneyError, exponent, to_minor

EAT = timezone(timedelta(hours=3), "EAT")  # M-Pesa's TransTime has no zone: it is East Africa Time

# Daraja C2B result codes (validation replies)
C2B_ACCEPTED = "0"
C2B_INVALID_MSISDN = "C2B00011"
C2B_INVALID_ACCOUNT = "C2B00012"
C2B_INVALID_AMOUNT = "C2B00013"
C2B_INVALID_SHORTCODE = "C2B00015"
C2B_OTHER = "C2B00016"


@dataclass(frozen=True)
class PaymentEvent:
    """A payment as every provider's adapter reports it."""

    provider: str
    txn_id: str
    account: str
    amount: int  # minor units
    currency: str
    paid_at: datetime
    payer: str | None = None
    status: str = "SUCCESSFUL"  # MoMo: SUCCESSFUL, FAILED or PENDING
    reverses: str | None = None  # a reversal names the provider transaction it undoes …
    reverses_provider: str | None = None  # … and that transaction's provider (default: the same)

    @property
    def paid_on(self) -> date:
        """The company's business day of the payment: the day it is credited from."""
        return clock.business_day(self.paid_at)


class Rejected(Exception):
    """Input that cannot become a payment: ``reason`` for people, ``code`` for the provider."""

    def __init__(self, reason: str, code: str = C2B_OTHER, txn_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.code, self.txn_id = reason, code, txn_id


# A plain decimal as people write amounts: ASCII digits, at most one point, no sign, exponent or
# separator ("1_000", "1e3" and Arabic-Indic digits all parse as Decimal, and none is an amount).
AMOUNT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,6})?")  # a sign only to be refused as not positive
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)  # no mobile-money payment of ours is older


def _clean(value: Any, txn: str | None, where: str = "body") -> None:
    """Refuse what no provider sends and the database cannot hold: NUL characters and lone surrogates
    in any string (keys included)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise Rejected(f"{where} contains a NUL character", txn_id=txn)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(f"{where} contains invalid Unicode (a lone surrogate)", txn_id=txn) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _clean(key, txn, where)
            _clean(item, txn, f"{where}.{str(key)[:40]}")
    elif isinstance(value, list):
        for item in value:
            _clean(item, txn, where)


def _txn(value: Any, name: str) -> str:
    """The provider's transaction id: the key the raw body is kept under, so it must be storable."""
    txn = str(value or "").strip()
    if not txn:
        raise Rejected(f"{name} is missing")
    if len(txn) > 100 or not txn.isprintable() or not txn.isascii():
        raise Rejected(f"{name} is not a plausible transaction id")
    return txn


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw, parse_float=Decimal, parse_int=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise Rejected(f"malformed JSON: {err}") from None
    except RecursionError:
        raise Rejected("malformed JSON: nested too deep") from None
    if not isinstance(body, dict):
        raise Rejected("expected a JSON object")
    return body


def _amount(text: Any, currency: str, code: str = C2B_INVALID_AMOUNT, txn_id: str | None = None) -> int:
    shown = str(text)[:40]
    if isinstance(text, bool) or not isinstance(text, str | Decimal | int) or not AMOUNT.fullmatch(str(text).strip()):
        raise Rejected(f"amount {shown!r} is not a plain decimal number", code, txn_id)
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise Rejected(f"amount {shown!r} is not a number", code, txn_id) from None
    if not value.is_finite() or value <= 0:
        raise Rejected(f"amount {shown!r} must be positive", code, txn_id)
    try:
        return to_minor(value, currency)
    except MoneyError as err:
        raise Rejected(str(err), code, txn_id) from None


def parse_mpesa_c2b(raw: bytes, shortcodes: set[str], currency: str = "KES") -> PaymentEvent:
    """A Daraja C2B validation or confirmation body (both have the same shape)."""
    body = _json(raw)
    txn = _txn(body.get("TransID"), "TransID")
    _clean(body, txn)
    shortcode = str(body.get("BusinessShortCode") or "").strip()
    if shortcode not in shortcodes:
        raise Rejected(f"BusinessShortCode {shortcode!r} is not ours", C2B_INVALID_SHORTCODE, txn)
    amount = _amount(body.get("TransAmount"), currency, txn_id=txn)
    when = str(body.get("TransTime") or "")[:40]
    try:
        local = datetime.strptime(when, "%Y%m%d%H%M%S")
    except ValueError:
        raise Rejected(f"TransTime {when!r} is not YYYYMMDDHHmmss", C2B_OTHER, txn) from None
    if local.year < OLDEST.year:
        raise Rejected(f"TransTime {when!r} is before {OLDEST:%Y}", C2B_OTHER, txn)
    paid_at = local.replace(tzinfo=EAT).astimezone(UTC)
    name = " ".join(str(body.get(k) or "").strip() for k in ("FirstName", "MiddleName", "LastName")).strip()
    return PaymentEvent(
        provider="mpesa",
        txn_id=txn,
        account=str(body.get("BillRefNumber") or "").strip(),
        amount=amount,
        currency=currency,
        paid_at=paid_at,
        payer=name or None,
    )


def parse_momo_callback(raw: bytes, reference_id: str | None, currencies: set[str]) -> PaymentEvent:
    """An MTN MoMo request-to-pay result (callback or poll answer). The key is our X-Reference-Id of
    the request (in the callback URL we gave, or the poll's path): the provider's
    financialTransactionId only exists once the payment succeeded."""
    body = _json(raw)
    txn = _txn(reference_id or body.get("financialTransactionId"), "the reference id (callback URL)")
    _clean(body, txn)
    currency = str(body.get("currency") or "").upper()
    if currency not in currencies:
        raise Rejected(f"currency {currency!r} is not one we collect ({', '.join(sorted(currencies))})", txn_id=txn)
    status = str(body.get("status") or "").upper()
    if status not in ("SUCCESSFUL", "FAILED", "PENDING"):
        raise Rejected(f"status {status!r} is not SUCCESSFUL, FAILED or PENDING", txn_id=txn)
    payer: dict[str, Any] = body["payer"] if isinstance(body.get("payer"), dict) else {}
    return PaymentEvent(
        provider="momo",
        txn_id=txn,
        account=str(body.get("externalId") or "").strip(),
        amount=_amount(body.get("amount"), currency, txn_id=txn),
        currency=currency,
        paid_at=clock.utc_now(),
        payer=str(payer.get("partyId") or "") or None,
        status=status,
    )


def sign(secret: str, raw: bytes) -> str:
    """The generic webhook's signature: hex HMAC-SHA256 of the raw body with the provider's secret."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def parse_webhook(raw: bytes, provider: str, signature: str | None, secrets: dict[str, str]) -> PaymentEvent:
    """The generic signed webhook (Wing, ABA and others, through a small relay of theirs):
    ``{"transaction_id", "account", "amount": "12.50", "currency", "paid_at": ISO 8601, "payer",
    "reverses": the transaction id a reversal undoes, "reverses_provider": its provider}``
    with header ``X-Signature: <hex HMAC-SHA256>``."""
    secret = secrets.get(provider)
    if secret is None:
        raise Rejected(f"unknown provider {provider!r}")
    if not signature or not hmac.compare_digest(sign(secret, raw), signature.strip().lower()):
        raise Rejected("bad or missing X-Signature (HMAC-SHA256 of the body with the provider's secret)")
    body = _json(raw)
    txn = _txn(body.get("transaction_id"), "transaction_id")
    _clean(body, txn)
    currency = str(body.get("currency") or "").upper()
    try:
        exponent(currency)
    except MoneyError as err:
        raise Rejected(str(err), txn_id=txn) from None
    try:
        paid_at = datetime.fromisoformat(str(body.get("paid_at"))[:64])
        if paid_at.tzinfo is None:
            raise Rejected("paid_at needs a time zone offset", txn_id=txn)
        paid_at = paid_at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Rejected(f"paid_at {str(body.get('paid_at'))[:40]!r} is not an ISO 8601 time", txn_id=txn) from None
    if paid_at < OLDEST:
        raise Rejected(f"paid_at {paid_at:%Y-%m-%d} is before {OLDEST:%Y}", txn_id=txn)
    return PaymentEvent(
        provider=provider,
        txn_id=txn,
        account=str(body.get("account") or "").strip(),
        amount=_amount(body.get("amount"), currency, txn_id=txn),
        currency=currency,
        paid_at=paid_at,
        payer=str(body.get("payer") or "") or None,
        reverses=str(body["reverses"]) if body.get("reverses") else None,
        reverses_provider=str(body["reverses_provider"]) if body.get("reverses_provider") else None,
    )
