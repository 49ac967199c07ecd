"""The call centre's one search box: a customer or unit by phone (typed any way), name (tolerant of
misspelling), serial, account number or national id; ranked, each hit saying which field matched.

Each kind of look-up is one index-backed query (customers/repository.py); only the kinds the text can
be are asked: a name needs letters, a phone or account digits."""

from __future__ import annotations

import re

import psycopg

from backoffice.config import get_settings
from backoffice.customers import phones
from backoffice.customers import repository as repo
from backoffice.customers.schemas import SearchHit
from backoffice.registry.service import is_valid_account_number

MAX_QUERY = 100
# Names: each word typed may be any of its most similar name words; at most so many names are ranked.
WORD_ALTERNATIVES = 6
CANDIDATES = 400
_IDENTIFIER = re.compile(r"[0-9A-Z/-]{2,32}")
_SERIAL = re.compile(r"[0-9A-Z_-]{3,64}")
_KIND_ORDER = {"phone": 0, "account": 1, "serial": 2, "national_id": 3, "name": 4}


def search(conn: psycopg.Connection, q: str, limit: int = 20, *, region: str | None = None) -> list[SearchHit]:
    """Customers and units matching ``q``, best first (score 1.0: an exact phone, account, serial or
    national id); at most ``limit``. ``region``: how a number without its country prefix is read
    (default PAYGO_DEFAULT_PHONE_REGION)."""
    text = " ".join(q.split())[:MAX_QUERY]
    limit = max(1, min(limit, 200))
    if len(text) < 2:
        return []
    region = region or get_settings().default_phone_region
    squeezed = text.replace(" ", "").upper()
    hits: list[SearchHit] = []
    numbers = phones.search_forms(text, region)
    if numbers:
        hits += repo.hits_by_phone(conn, numbers, limit)
    if is_valid_account_number(squeezed):
        hits += repo.hits_by_account(conn, squeezed, limit)
    if _SERIAL.fullmatch(squeezed) and any(c.isdigit() for c in squeezed):
        hits += repo.hits_by_serial(conn, squeezed, limit)
    if _IDENTIFIER.fullmatch(squeezed) and any(c.isdigit() for c in squeezed):
        hits += repo.hits_by_national_id(conn, squeezed, limit)
    if any(c.isalpha() for c in text) and len(text) >= 3:
        alternatives = repo.name_word_alternatives(conn, text, WORD_ALTERNATIVES)
        if alternatives:
            hits += repo.hits_by_name(conn, text, alternatives, limit, CANDIDATES)
    return _best(hits, limit)


def _best(hits: list[SearchHit], limit: int) -> list[SearchHit]:
    """One hit per customer and unit (its best match), the best first."""
    best: dict[tuple[int | None, str | None], SearchHit] = {}
    for h in hits:
        key = (h.customer_id, h.serial)
        kept = best.get(key)
        if kept is None or (h.score, -_KIND_ORDER[h.matched]) > (kept.score, -_KIND_ORDER[kept.matched]):
            best[key] = h
    ranked = sorted(
        best.values(), key=lambda h: (-h.score, _KIND_ORDER[h.matched], h.customer_name or "", h.serial or "")
    )
    return ranked[:limit]
