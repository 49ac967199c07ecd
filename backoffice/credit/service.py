"""What a payment buys, and the tokens that deliver it.

A contract keeps two running totals: ``paid_total`` (minor units credited) and ``days_granted``
(days issued as tokens). The days a payment buys are recomputed from the totals every time —
``target_days(paid_total) - days_granted`` — so a fraction of a day stays in the balance and is
never lost, and a reversal simply makes the next token smaller. The deposit buys the first period;
paying the whole price issues DISABLE_PAYG and marks the contract paid off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import psycopg
from openpaygo import TokenType, generate_token

import protocol
from backoffice import crypto
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.credit import repository
from backoffice.credit.repository import CreditAccount
from backoffice.delivery import repository as delivery
from backoffice.ledger import repository as ledger
from backoffice.money import to_decimal
from backoffice.sms import text as sms_text

TOKEN_NAMES: dict[TokenType, protocol.TokenKind] = {
    TokenType.ADD_TIME: "add_time",
    TokenType.SET_TIME: "set_time",
    TokenType.DISABLE_PAYG: "disable_payg",
}
MAX_TOKEN_DAYS = 995  # OpenPAYGO's largest ADD_TIME value; more days become several tokens


def total_price(a: CreditAccount) -> int | None:
    """What owning the unit costs, or None for fee-for-service."""
    if a.business_model == "asset_finance":
        return (a.deposit_amount or 0) + (a.instalment_amount or 0) * (a.instalment_count or 0)
    return a.price_to_own


def target_days(a: CreditAccount, paid_total: int) -> int:
    """Days of light that ``paid_total`` buys under the contract's terms (floor: whole days only)."""
    deposit = a.deposit_amount or 0
    if paid_total < deposit or paid_total <= 0:
        return 0
    rest = paid_total - deposit
    if a.business_model == "asset_finance":
        period, instalment = a.instalment_period_days or 30, a.instalment_amount or 1
        first = period if deposit else 0
        return first + rest * period // instalment
    return (a.deposit_days or 0) + rest // (a.price_per_day or 1)


@dataclass
class Credited:
    contract_id: int
    days_added: int
    paid_off: bool
    tokens: list[dict[str, object]] = field(default_factory=list)
    light_until: date | None = None  # what the receipt SMS says, when the payment bought days


def credit_until(signed_on: date, days_granted: int) -> date:
    """The day a contract's credit runs out as the ledger counts it: every day granted since signing,
    back to back (a unit that was left without credit for a while gets its days from the token on)."""
    return signed_on + timedelta(days=days_granted)


def light_until(a: CreditAccount, days: int, paid_on: date) -> date:
    """Until when ``days`` more of credit light the unit: from the end of the days already granted, or
    from the payment when that end was in the past (a unit without credit counts from its token). Goodwill
    days granted by the call centre count as credit too."""
    return max(credit_until(a.signed_on, a.days_granted + a.goodwill_days + days), paid_on + timedelta(days=days))


@dataclass(frozen=True)
class Receipt:
    """The payment a token answers, for the customer's receipt SMS."""

    amount: int
    currency: str
    paid_on: date


def _sms(a: CreditAccount, kind: TokenType, token: str, days: int, receipt: Receipt | None) -> sms_text.Sms:
    values: dict[str, object] = {"token": sms_text.spaced(token), "days": days, "serial": a.serial,
                                 "account": a.account_number}  # fmt: skip
    if kind == TokenType.DISABLE_PAYG:
        return sms_text.render("paid_off", a.language, **values)
    if kind == TokenType.ADD_TIME and receipt is not None:
        until = light_until(a, days, receipt.paid_on)
        amount = f"{to_decimal(receipt.amount, receipt.currency):,} {receipt.currency}"
        return sms_text.render("receipt", a.language, amount=amount, until=sms_text.day(until), **values)
    return sms_text.render("token", a.language, **values)


def _issue(
    conn: psycopg.Connection, a: CreditAccount, secret_key: str, inbox_id: int | None, kind: TokenType, days: int,
    history_at: datetime | None = None, receipt: Receipt | None = None, deliver: bool = True,
) -> dict[str, object]:  # fmt: skip
    if a.key_enc is None:
        raise ValueError(f"unit {a.serial} has no OpenPAYGO key")
    key = crypto.decrypt(secret_key, a.key_enc)
    value = None if kind == TokenType.DISABLE_PAYG else days
    count, token = generate_token(
        secret_key=key, count=a.token_count, value=value, token_type=kind, starting_code=a.starting_code
    )
    token = str(token).zfill(9)
    name = TOKEN_NAMES[kind]
    token_id = repository.insert_token(conn, a.unit_id, a.contract_id, inbox_id, name, days, count, token, history_at)
    a.token_count = count
    command = protocol.TokenCommand(token=token, token_type=name, days=days, count=count)
    deliveries = [("mqtt", "command", a.serial, protocol.encode_command(command))]
    if a.phone:
        sms = _sms(a, kind, token, days, receipt)
        deliveries.append(("sms", sms.kind, a.phone, sms.body))
    if deliver:
        repository.insert_outbox(conn, token_id, a.contract_id, deliveries, history_at)
    return {"id": token_id, "token": token, "token_type": name, "days": days, "count": count}


def set_time_token(
    conn: psycopg.Connection, unit_id: int, secret_key: str, today: date, reported: int = -1
) -> str | None:
    """OpenPAYGO Metrics "time mode" (a device that expects one SET_TIME token for its expiry rather
    than the ADD_TIME tokens it lacks): a SET_TIME token for the credit the unit's active contract
    has from ``today`` (the days granted less those since signing), in the caller's transaction,
    without SMS or MQTT deliveries (the Metrics answer carries it). None without an active contract.
    The unit's newest token is given again when it is a SET_TIME token of that very value that the
    unit has not acknowledged (its count above ``reported``, the token count the unit reports): a
    unit whose count lags gets one token, not a new one at every request."""
    contract_id = repository.active_contract_of_unit(conn, unit_id)
    if contract_id is None:
        return None
    a = repository.lock_account(conn, contract_id)
    left = max(0, min(a.days_granted + a.goodwill_days - (today - a.signed_on).days, MAX_TOKEN_DAYS))
    newest = repository.newest_token(conn, unit_id)
    if newest is not None:
        token, kind, days, count = newest
        if kind == TOKEN_NAMES[TokenType.SET_TIME] and days == left and count > reported:
            return token
    return str(_issue(conn, a, secret_key, None, TokenType.SET_TIME, left, deliver=False)["token"])


def resend_token(conn: psycopg.Connection, token_id: int, actor: Actor) -> int:
    """Send a token again (its SMS and unit command), audited, in the caller's transaction; returns the
    deliveries queued (0: no such token)."""
    found = repository.token_to_resend(conn, token_id)
    body = None
    if found is not None:
        values = {"token": sms_text.spaced(found.token), "serial": found.serial, "account": found.account_number,
                  "days": found.value_days}  # fmt: skip
        body = sms_text.render("token_resend", found.language, **values).body
    queued = delivery.requeue_token(conn, token_id, body)
    if queued:
        audit.record(conn, actor, "token-resent", "token", token_id, after={"deliveries_queued": queued})
    return queued


@dataclass(frozen=True)
class Decision:
    """What a payment does to a contract: ADD_TIME tokens of these days (each at most 995), or
    DISABLE_PAYG when it completes the price; and the contract's totals and state after it.
    ``relock``: a reversal took a paid-off contract below its price, so the unit, unlocked for good,
    gets a SET_TIME token for the days it still has (``days_left`` is decided at ``paid_on``)."""

    add_days: tuple[int, ...]
    paid_off: bool
    paid_total: int
    days_granted: int
    state: str
    relock: bool = False


def decide(a: CreditAccount, amount: int) -> Decision:
    """The credit a payment of ``amount`` buys under the contract's terms (no I/O): whole days from
    the new paid total, the remainder kept for the next payment; ended contracts buy nothing."""
    after = a.paid_total + amount
    price = total_price(a)
    if a.state == "active" and price is not None and after >= price:
        return Decision((), True, after, a.days_granted, "paid_off")
    if a.state == "paid_off" and price is not None and after < price:
        return Decision((), False, after, target_days(a, after), "active", relock=True)
    chunks: list[int] = []
    if a.state == "active":
        days = target_days(a, after) - a.days_granted
        while days > 0:
            chunks.append(min(days, MAX_TOKEN_DAYS))
            days -= chunks[-1]
    return Decision(tuple(chunks), False, after, a.days_granted + sum(chunks), a.state)


def apply_payment(
    conn: psycopg.Connection, contract_id: int, amount: int, paid_on: date, secret_key: str,
    inbox_id: int | None = None, history_at: datetime | None = None,
) -> Credited:  # fmt: skip
    """Credit ``amount`` (minor units, may be negative for a reversal) in the caller's transaction:
    ledger rows, new totals, tokens for the days it buys, their SMS and MQTT deliveries.
    ``history_at``: a payment of a backfilled past; its tokens are dated then and its deliveries
    are kept as history, never sent."""
    a = repository.lock_account(conn, contract_id)
    before, after = a.paid_total, a.paid_total + amount
    deposit = a.deposit_amount or 0
    to_deposit = max(min(after, deposit) - min(before, deposit), 0) if amount > 0 else 0
    rows = []
    if to_deposit:
        rows.append((paid_on, "completed", "deposit", to_deposit))
    if amount - to_deposit:
        rows.append((paid_on, "completed", "payment", amount - to_deposit))
    ledger.insert_entries(conn, contract_id, a.currency, rows, inbox_id)

    result = Credited(contract_id, 0, False)
    decision = decide(a, amount)
    if decision.paid_off:
        result.tokens.append(_issue(conn, a, secret_key, inbox_id, TokenType.DISABLE_PAYG, 0, history_at))
        result.paid_off = True
    receipt = Receipt(amount, a.currency, paid_on) if amount > 0 else None
    for chunk in decision.add_days:
        result.tokens.append(_issue(conn, a, secret_key, inbox_id, TokenType.ADD_TIME, chunk, history_at, receipt))
        result.light_until = light_until(a, chunk, paid_on)
        result.days_added += chunk
        a.days_granted += chunk  # the next chunk's receipt counts from the end of this one
    if decision.relock:
        # What the customer paid for (and was given), less the days since signing: the credit from today.
        given = decision.days_granted + a.goodwill_days
        left = max(0, min(given - (paid_on - a.signed_on).days, MAX_TOKEN_DAYS))
        result.tokens.append(_issue(conn, a, secret_key, inbox_id, TokenType.SET_TIME, left, history_at))
    state, granted = decision.state, decision.days_granted
    repository.update_credit(conn, contract_id, after, granted, state)
    return result


@dataclass(frozen=True)
class Goodwill:
    grant_id: int
    token_id: int
    token: str
    days: int


class GoodwillRefused(ValueError):
    """Goodwill days that cannot be given; the message says why."""


GOODWILL_WINDOW_DAYS = 30  # a caller's goodwill limit counts every grant to the contract in this window


def grant_goodwill(
    conn: psycopg.Connection, contract_id: int, days: int, reason: str, secret_key: str, actor: Actor,
    limit: int | None = None,
) -> Goodwill:  # fmt: skip
    """Give ``days`` of light free (a gesture of the call centre), in the caller's transaction: an
    ADD_TIME token delivered like paid days (SMS and unit command), the grant recorded and audited.
    Not money: no ledger row, and ``days_granted`` (what payments bought) is left alone, so the next
    payment buys what it would have. ``limit``: the most days the contract may have been given in the
    last GOODWILL_WINDOW_DAYS, this grant included (the caller's policy), checked under the account's
    lock so that repeated or concurrent grants cannot add up past it."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise GoodwillRefused(f"goodwill is 1 to {MAX_TOKEN_DAYS} days, not {days}")
    a = repository.lock_account(conn, contract_id)
    if a.state != "active":
        raise GoodwillRefused(f"contract {a.account_number} is {a.state.replace('_', ' ')}: only an active "
                              "contract's unit counts down days")  # fmt: skip
    if limit is not None:
        given = repository.goodwill_since(conn, contract_id, GOODWILL_WINDOW_DAYS)
        if given + days > limit:
            raise GoodwillRefused(f"{days} goodwill days refused: {a.account_number} was given {given} in the "
                                  f"last {GOODWILL_WINDOW_DAYS} days, and at most {limit} in that time")  # fmt: skip
    issued = _issue(conn, a, secret_key, None, TokenType.ADD_TIME, days)
    token_id = int(str(issued["id"]))
    grant_id = repository.record_goodwill(conn, contract_id, token_id, days, reason, actor.name, actor.user_id)
    audit.record(conn, actor, "goodwill-granted", "contract", a.account_number,
                 before={"goodwill_days": a.goodwill_days},
                 after={"goodwill_days": a.goodwill_days + days, "days": days, "reason": reason,
                        "token_id": token_id, "grant_id": grant_id})  # fmt: skip
    return Goodwill(grant_id, token_id, str(issued["token"]), days)
