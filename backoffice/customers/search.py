"""The call centre's one search box: a customer or unit by phone (typed any way), name (tolerant of
misspelling), serial, account number or national id; ranked, each hit saying which field matched.

Each kind of look-up is one index-backed query (customers/repository.py); only the kinds the text can
be are asked: a name needs letters, a phone or account digits."""

from __future__ import annotations

import re
from collections.abc import Sequence

import psycopg
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from backoffice.config import get_settings
from backoffice.customers import phones
from backoffice.customers import repository as repo
from backoffice.customers.schemas import SearchHit
from backoffice.registry.service import is_valid_account_number

MAX_QUERY = 100
# Names: each word typed may be any of its closest name words (at most so many, from the vocabulary's
# nearest so many); a word of four letters or more may have two slips, a shorter one one; at most so
# many names are ranked.
WORD_ALTERNATIVES = 8
WORD_NEIGHBOURS = 200
MAX_SLIPS = 2
CANDIDATES = 400
# The last digits of a serial are looked for from this many on (fewer: only the serial's number).
SUFFIX_DIGITS = 4
_IDENTIFIER = re.compile(r"[0-9A-Z/-]{2,32}")
_SERIAL = re.compile(r"[0-9A-Z_-]{3,64}")
_KIND_ORDER = {"phone": 0, "account": 1, "serial": 2, "national_id": 3, "name": 4}


def search(
    conn: psycopg.Connection,
    q: str,
    limit: int = 20,
    *,
    region: str | None = None,
    regions: Sequence[str] | None = None,
) -> list[SearchHit]:
    """Customers and units matching ``q``, best first (score 1.0: an exact phone, account, serial or
    national id); at most ``limit``. ``regions``: the countries a number typed without its country
    prefix is read in (default PAYGO_DEFAULT_PHONE_REGION then PAYGO_PHONE_REGIONS); ``region``: one."""
    text = " ".join(q.split())[:MAX_QUERY]
    limit = max(1, min(limit, 200))
    squeezed = text.replace(" ", "").upper()
    if squeezed.isdigit() and squeezed.isascii() and len(squeezed) < 2:
        # One digit is still a serial read out: "1" for SHS0000001.
        return _best(repo.hits_by_serial_digits(conn, squeezed, limit, suffix=False), limit) if squeezed != "0" else []
    if len(text) < 2:
        return []
    if regions is None:
        regions = [region] if region else get_settings().search_phone_regions
    hits: list[SearchHit] = []
    numbers = phones.search_forms(text, regions)
    if numbers:
        hits += repo.hits_by_phone(conn, numbers, limit)
    if is_valid_account_number(squeezed):
        hits += repo.hits_by_account(conn, squeezed, limit)
    if _SERIAL.fullmatch(squeezed) and any(c.isdigit() for c in squeezed):
        hits += repo.hits_by_serial(conn, squeezed, limit)
    if squeezed.isdigit() and squeezed.isascii():
        # A serial's digits without its prefix: its number ("0000001", "1"), or its last digits.
        if squeezed.strip("0"):
            hits += repo.hits_by_serial_digits(conn, squeezed, limit, suffix=len(squeezed) >= SUFFIX_DIGITS)
    if _IDENTIFIER.fullmatch(squeezed) and any(c.isdigit() for c in squeezed):
        hits += repo.hits_by_national_id(conn, squeezed, limit)
    if any(c.isalpha() for c in text) and len(text) >= 3:
        hits += _by_name(conn, text, limit)
    return _best(hits, limit)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", text.lower()) if w] if text.isascii() else text.lower().split()


def _by_name(conn: psycopg.Connection, text: str, limit: int) -> list[SearchHit]:
    """Names as callers spell them: each word typed may be a name word a few keyboard slips away (a
    letter dropped, doubled, replaced, or two swapped: each one slip, by the optimal string alignment
    distance), however many words the name has and in any order. The names holding a close word for
    every word typed (or, if none, for all words but one) are ranked by their slips in all, then by how
    alike the whole name is; the score is 0.9 less 0.1 a slip, plus up to 0.09 for the likeness."""
    alternatives = []
    for typed, words in repo.name_word_neighbours(conn, text, WORD_NEIGHBOURS):
        slips = {w: OSA.distance(typed, w) for w in words}
        allowed = min(MAX_SLIPS if len(typed) >= 4 else 1, min(slips.values(), default=MAX_SLIPS) + 1)
        close = sorted((w for w in words if slips[w] <= allowed), key=lambda w: (slips[w], w))
        if close:
            alternatives.append((typed, close[:WORD_ALTERNATIVES]))
    if not alternatives:
        return []
    found = repo.customers_named(conn, [alts for _, alts in alternatives], CANDIDATES)
    if not found and len(alternatives) >= 2:
        # One word may be beyond recognition ("Nyi" for Nyapi): the names that hold all the others.
        found = repo.customers_named_but_one(conn, [alts for _, alts in alternatives], CANDIDATES)
    typed_words = [typed for typed, _ in alternatives]
    ranked = []
    for customer in found:
        name_words = _words(customer.name) or [""]
        edits = sum(min(OSA.distance(t, w) for w in name_words) for t in typed_words)
        likeness = fuzz.token_sort_ratio(text.lower(), customer.name.lower()) / 100
        ranked.append((customer.id, max(0.9 - 0.1 * edits, 0.0) + 0.09 * likeness))
    ranked.sort(key=lambda r: (-r[1], r[0]))
    return repo.hits_by_name(conn, ranked[:limit], limit) if ranked else []


def _best(hits: list[SearchHit], limit: int) -> list[SearchHit]:
    """One hit per customer and unit (its best match), the best first."""
    best: dict[tuple[int | None, str | None], SearchHit] = {}
    for h in hits:
        key = (h.customer_id, h.serial)
        kept = best.get(key)
        if kept is None or (h.score, -_KIND_ORDER[h.matched]) > (kept.score, -_KIND_ORDER[kept.matched]):
            best[key] = h
    ranked = sorted(
        # At one score, a unit with a customer before one in stock (a caller has the first).
        best.values(),
        key=lambda h: (-h.score, _KIND_ORDER[h.matched], h.customer_id is None, h.customer_name or "", h.serial or ""),
    )
    return ranked[:limit]
