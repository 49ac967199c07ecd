"""Money as integer minor units of an ISO 4217 currency (KES 2 decimals, UGX 0, BHD 3)."""

from __future__ import annotations

from decimal import Decimal

from iso4217 import Currency


class MoneyError(ValueError):
    """An amount or currency that cannot be held exactly."""


def exponent(currency: str) -> int:
    """Number of decimals of the currency's minor unit."""
    try:
        return int(Currency(currency.upper()).exponent or 0)
    except (ValueError, KeyError):
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code") from None


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """Exact minor units; more decimals than the currency has is an error, never rounded away."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more decimals than {currency.upper()} allows ({exponent(currency)})")
    return int(scaled)
