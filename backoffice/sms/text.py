"""The words of every SMS, kept as template files (``backoffice/templates/sms/<language>/<kind>.txt``,
Jinja2 without HTML escaping), chosen by the customer's language with English as the fallback; and
how many segments a text costs (GSM 03.38 7-bit, else UCS-2)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

SMS_DIR = Path(__file__).resolve().parent.parent / "templates" / "sms"
FALLBACK = "en"
Kind = Literal["receipt", "paid_off", "token", "token_resend", "reminder"]
KINDS: tuple[Kind, ...] = ("receipt", "paid_off", "token", "token_resend", "reminder")
LANGUAGES = ("en", "km", "sw")  # what customers.language allows (migration 0016)

# GSM 03.38: the basic set costs one septet a character, the extension table two (an escape first).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")
# One SMS carries 160 septets or 70 UCS-2 units; a concatenated one loses room to its header.
LIMITS = {"gsm7": (160, 153), "ucs2": (70, 67)}


class SmsTemplateError(LookupError):
    """No template of this kind, in the language asked nor in English."""


@dataclass(frozen=True)
class Segments:
    encoding: Literal["gsm7", "ucs2"]
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    count: int  # SMS segments it is sent as


def segments(text: str) -> Segments:
    """How the text is sent: GSM-7 if every character is in the GSM alphabet, else UCS-2."""
    if all(c in GSM_BASIC or c in GSM_EXTENDED for c in text):
        encoding: Literal["gsm7", "ucs2"] = "gsm7"
        units = sum(2 if c in GSM_EXTENDED else 1 for c in text)
    else:
        encoding = "ucs2"
        units = len(text.encode("utf-16-le")) // 2
    single, multi = LIMITS[encoding]
    return Segments(encoding, units, 1 if units <= single else math.ceil(units / multi))


@dataclass(frozen=True)
class Sms:
    kind: Kind
    language: str  # the language the text is in (English when the customer's had no template)
    body: str


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(SMS_DIR)), autoescape=False, undefined=StrictUndefined, auto_reload=False
    )


_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def render(kind: Kind, language: str | None, **values: object) -> Sms:
    """The SMS of ``kind`` in ``language`` (its template, or English's when it has none)."""
    if kind not in KINDS:
        raise SmsTemplateError(f"no SMS kind {kind!r} (kinds: {', '.join(KINDS)})")
    wanted = language if language and _LANGUAGE.match(language) else FALLBACK
    for lang in dict.fromkeys((wanted, FALLBACK)):
        try:
            template = _environment().get_template(f"{lang}/{kind}.txt")
        except TemplateNotFound:
            continue
        body = " ".join(template.render(**values).split())  # one line: a template's line breaks are layout
        return Sms(kind, lang, body)
    raise SmsTemplateError(f"no template {FALLBACK}/{kind}.txt under {SMS_DIR}")


def spaced(token: str) -> str:
    """A 9-digit token as customers type it: 123 456 789."""
    return f"{token[:3]} {token[3:6]} {token[6:]}" if len(token) == 9 else token


def day(d: date) -> str:
    """Dates in every language as 2026-11-30: short, and read the same way everywhere."""
    return d.isoformat()
