"""Where unmatched money probably belongs: finance's suggestions on ``/payments/waiting`` (issue 26).

For a payment that matched no account, candidate contracts come from three clues, each worth points
(docs/finance_pages.md):

- **the account typed**: the account numbers one slip away from it that pass the check digit: one
  adjacent pair swapped (5 points: the commonest slip, and one a check digit of the Luhn kind lets
  through rarely) or one digit wrong (4 points; for a number that fails its check digit exactly one
  digit per position makes it pass, so at most eight);
- **the payer's number**: customers whose phone fits the number the provider sent, masked or not
  ("2547 ***** 126": the known first and last digits) (3 points);
- **the amount** against the contract's instalments: a whole number of instalments (asset finance) or
  of days (flexible) (1 point; it only ranks candidates the other clues found: it alone fits too many).

Only contracts in the payment's currency that can still take money (active or paid off) are offered,
highest score first, then the contract's account. ``find`` is the "Find contract" box: the one search
box, and then the account numbers one slip away from what was typed, and a masked number's customers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import psycopg

from backoffice.money import to_decimal
from backoffice.payments import repository
from backoffice.registry.service import is_valid_account_number

TRANSPOSED, ONE_DIGIT, PHONE, AMOUNT = 5, 4, 3, 1
SHOWN = 5  # suggestions shown per payment
ASSIGNABLE = ("active", "paid_off")
_MASKED = re.compile(r"^\+?(\d{3,})[*xX•#]+(\d{2,})$")  # "2547*****126" once spaces are taken out
_FULL = re.compile(r"^\+?(\d{9,15})$")


@dataclass
class Suggestion:
    candidate: repository.Candidate
    score: int = 0
    reasons: list[str] = field(default_factory=list)


def near_accounts(typed: str) -> list[tuple[str, str]]:
    """(account number, how it differs) for every number one adjacent swap or one digit away from
    ``typed`` that passes the check digit; swaps first."""
    digits = "".join(ch for ch in typed if not ch.isspace())
    if len(digits) != 8 or not digits.isdigit():
        return []
    out: dict[str, str] = {}
    for i in range(7):
        if digits[i] != digits[i + 1]:
            swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
            if is_valid_account_number(swapped):
                out.setdefault(swapped, f"digits {i + 1} and {i + 2} swapped")
    for i in range(8):
        for d in "0123456789":
            changed = digits[:i] + d + digits[i + 1 :]
            if d != digits[i] and is_valid_account_number(changed):
                out.setdefault(changed, f"digit {i + 1} is {d}, not {digits[i]}")
    return list(out.items())


def payer_number(provider: str, payer: str | None, raw: bytes | None) -> tuple[str, str] | None:
    """(first digits, last digits) of the payer's phone number, from what the provider sent: M-Pesa's
    masked ``MSISDN`` in the raw record, or a full number in the payer field (MoMo's wallet, a webhook's
    payer); None when there is none. A full number gives the whole number as its prefix."""
    candidates = []
    if provider == "mpesa" and raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("MSISDN"), str | int):
            candidates.append(str(body["MSISDN"]))
    if payer:
        candidates.append(payer)
    for text in candidates:
        compact = re.sub(r"[\s()-]", "", text)
        if m := _MASKED.match(compact):
            return m.group(1), m.group(2)
        if m := _FULL.match(compact):
            return m.group(1), ""
    return None


def amount_fit(c: repository.Candidate, amount: int) -> str | None:
    """How a payment's amount fits a contract's terms, or None."""
    if amount <= 0:
        return None
    if c.business_model == "asset_finance" and c.instalment_amount and amount % c.instalment_amount == 0:
        n = amount // c.instalment_amount
        return f"{'an instalment' if n == 1 else f'{n} instalments'} of {to_decimal(c.instalment_amount, c.currency)}"
    if c.business_model == "flexible" and c.price_per_day and amount % c.price_per_day == 0:
        n = amount // c.price_per_day
        return f"exactly {n} day{'s' * (n != 1)} at {to_decimal(c.price_per_day, c.currency)} a day"
    return None


def _add(found: dict[int, Suggestion], c: repository.Candidate, points: int, why: str) -> None:
    s = found.setdefault(c.contract_id, Suggestion(c))
    s.score += points
    s.reasons.append(why)


def suggest(conn: psycopg.Connection, item: repository.Unmatched, limit: int = SHOWN) -> list[Suggestion]:
    """The ranked suggestions for one waiting payment."""
    found: dict[int, Suggestion] = {}
    near = dict(near_accounts(item.account or ""))
    for c in repository.candidates_by_account(conn, list(near)):
        swap = "swapped" in near[c.account_number]
        _add(found, c, TRANSPOSED if swap else ONE_DIGIT, f"account {c.account_number}: {near[c.account_number]}")
    number = payer_number(item.provider, item.payer, repository.inbox_raw(conn, item.inbox_id))
    if number is not None:
        prefix, suffix = number
        for c in repository.candidates_by_phone(conn, prefix, suffix):
            _add(found, c, PHONE, f"the payer's number fits {c.customer}'s")
    if item.amount is not None:
        for s in found.values():
            if fit := amount_fit(s.candidate, item.amount):
                s.score += AMOUNT
                s.reasons.append(f"the amount is {fit}")
    offered = [s for s in found.values() if s.candidate.state in ASSIGNABLE and s.candidate.currency == item.currency]
    offered.sort(key=lambda s: (-s.score, s.candidate.account_number))
    return offered[:limit]


def find(conn: psycopg.Connection, q: str) -> list[repository.ContractHit]:
    """ "Find contract": the search box's hits, then contracts one slip away from a typed account number
    and the customers of a masked phone number, without repeats."""
    hits = repository.find_contracts(conn, q)
    seen = {h.account_number for h in hits}
    more: list[repository.Candidate] = []
    compact = re.sub(r"[\s()-]", "", q)
    if compact.isdigit() and len(compact) == 8:
        more += repository.candidates_by_account(conn, [a for a, _ in near_accounts(compact)])
    if m := _MASKED.match(compact):
        more += repository.candidates_by_phone(conn, m.group(1), m.group(2))
    for c in more:
        if c.account_number not in seen:
            seen.add(c.account_number)
            hits.append(repository.ContractHit(c.account_number, c.customer, c.phone, c.serial, c.state, c.currency,
                                               c.paid_total, c.credit_end))  # fmt: skip
    return hits
