"""Phone numbers to E.164, however they are typed: spaces, dashes, with or without the country prefix
(``+254 712 345 678``, ``254712345678``), the national form with its leading 0 (``0712 345 678``) or
without it (``712 345 678``) in the default region (PAYGO_DEFAULT_PHONE_REGION); the search box reads
a national form in every region the company serves (PAYGO_PHONE_REGIONS)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

_TYPED = re.compile(r"\+?[0-9 ().\-/]+")
_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "its country code is unknown",
    NumberParseException.NOT_A_NUMBER: "it is not a number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}


class PhoneRefused(ValueError):
    """A number that cannot be a customer's phone; the message says why, for the person who typed it."""


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def to_e164(typed: str, region: str) -> str:
    """The number in E.164 (``+254712345678``), or PhoneRefused with the reason."""
    text = typed.strip()
    if not text:
        raise PhoneRefused("a phone number is empty")
    if len(text) > 32 or not _TYPED.fullmatch(text):
        raise PhoneRefused(f"{text[:32]!r} is not a phone number: only digits, spaces, '+', '-', '(' and ')'")
    digits = re.sub(r"\D", "", text)
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as err:
        number = None
        why = _PARSE_ERRORS.get(err.error_type, "it cannot be read")
    else:
        why = f"it is not a valid number in {region} nor with a country code"
    if number is None or not phonenumbers.is_valid_number(number):
        # Typed with its country code but without the '+' (254712345678): read it as international.
        if not text.startswith(("+", "0")):
            alt = _parse("+" + digits, region)
            if alt is not None and phonenumbers.is_valid_number(alt):
                return phonenumbers.format_number(alt, PhoneNumberFormat.E164)
        raise PhoneRefused(f"{text!r} is not a phone number: {why}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def search_forms(typed: str, region: str | Sequence[str]) -> list[str]:
    """The E.164 numbers that text typed into the search box may mean (none if it is not a number): as
    typed in each region the company serves (``097 058 6261`` is a Cambodian number,
    ``0712 345 678`` a Kenyan one), and as an international number without its '+'."""
    text = typed.strip()
    if not _TYPED.fullmatch(text) or len(re.sub(r"\D", "", text)) < 6:
        return []
    regions = [region] if isinstance(region, str) else list(region)
    found = []
    for candidate, where in [*((text, r) for r in regions), ("+" + re.sub(r"\D", "", text), "ZZ")]:
        number = _parse(candidate, where)
        if number is not None and phonenumbers.is_valid_number(number):
            found.append(phonenumbers.format_number(number, PhoneNumberFormat.E164))
    return list(dict.fromkeys(found))


def display(e164: str) -> str:
    """How a stored number is shown to people: international format with spaces."""
    number = _parse(e164, "ZZ")
    return e164 if number is None else phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
