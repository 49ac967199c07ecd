"""All SQL of credit and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg.rows import class_row


@dataclass
class CreditAccount:
    """A contract with its unit, product terms and customer, locked for this transaction."""

    contract_id: int
    account_number: str
    state: str
    currency: str
    paid_total: int
    days_granted: int  # days that payments bought
    goodwill_days: int  # days given free by the call centre (goodwill_grants)
    unit_id: int
    serial: str
    key_enc: bytes | None
    starting_code: int | None
    token_count: int
    business_model: str
    deposit_amount: int | None
    instalment_amount: int | None
    instalment_count: int | None
    instalment_period_days: int | None
    price_per_day: int | None
    price_to_own: int | None
    deposit_days: int | None
    phone: str | None
    signed_on: date
    language: str  # the customer's, for their SMS
    # When the unit's light stops as its tokens gave it (contracts.credit_end, migration 0033); None
    # with no token yet, or never (DISABLE_PAYG: ``unlocked``).
    credit_end: datetime | None
    unlocked: bool


# contracts.credit_end is 'infinity' once DISABLE_PAYG was issued: Python has no such instant.
CREDIT_END = "nullif(c.credit_end, 'infinity') as credit_end, coalesce(c.credit_end = 'infinity', false) as unlocked"

_ACCOUNT = f"""select c.id as contract_id, c.account_number, c.state, c.currency, c.paid_total, c.days_granted,
                      c.goodwill_days, {CREDIT_END},
                      u.id as unit_id, u.serial, u.openpaygo_key_enc as key_enc, u.starting_code, u.token_count,
                      p.business_model, p.deposit_amount, p.instalment_amount, p.instalment_count,
                      p.instalment_period_days, p.price_per_day, p.price_to_own, p.deposit_days, c.signed_on,
                      sms_phone(cu.id) as phone, cu.language
               from contracts c
               join units u on u.id = c.unit_id
               join products p on p.id = c.product_id
               join customers cu on cu.id = c.customer_id"""


def accounts(conn: psycopg.Connection, contract_ids: list[int]) -> dict[int, CreditAccount]:
    """Several contracts' credit terms and totals as they stand (not locked)."""
    with conn.cursor(row_factory=class_row(CreditAccount)) as cur:
        rows = cur.execute(_ACCOUNT + " where c.id = any(%s)", (contract_ids,)).fetchall()
    return {r.contract_id: r for r in rows}


def lock_account(conn: psycopg.Connection, contract_id: int) -> CreditAccount:
    """The contract and its unit, row-locked until the transaction ends: payments for one unit are
    credited one after the other, so token counts advance without gaps or reuse. ``no key update``:
    the lock that updating non-key columns needs, which leaves the key-share locks of foreign-key
    checks alone, so readings written for the unit meanwhile neither wait nor deadlock with it."""
    with conn.cursor(row_factory=class_row(CreditAccount)) as cur:
        row = cur.execute(_ACCOUNT + " where c.id = %s for no key update of c, u", (contract_id,)).fetchone()
    if row is None:
        raise LookupError(f"no contract {contract_id}")
    return row


def active_contract_of_unit(conn: psycopg.Connection, unit_id: int) -> int | None:
    row = conn.execute(
        "select id from contracts where unit_id = %s and state = 'active' order by id desc limit 1", (unit_id,)
    ).fetchone()
    return int(row[0]) if row else None


def update_credit(conn: psycopg.Connection, contract_id: int, paid_total: int, days_granted: int, state: str) -> None:
    conn.execute(
        "update contracts set paid_total = %s, days_granted = %s, state = %s where id = %s",
        (paid_total, days_granted, state, contract_id),
    )


def credit_end(conn: psycopg.Connection, contract_id: int) -> tuple[datetime | None, bool]:
    """When the contract's credit ends as its tokens gave it (None: no token yet, or never), and whether
    never (DISABLE_PAYG)."""
    row = conn.execute(f"select {CREDIT_END} from contracts c where c.id = %s", (contract_id,)).fetchone()
    return (row[0], bool(row[1])) if row else (None, False)


def credit_end_before_payoff(conn: psycopg.Connection, contract_id: int) -> datetime | None:
    """The contract's credit end as its tokens gave it, DISABLE_PAYG left out: the days it had when a
    reversal takes its unit back from owned (None: no days at all)."""
    row = conn.execute(
        """select nullif(fold_credit_end(token_type, value_days, created_at order by count, id), 'infinity')
             from tokens where contract_id = %s and token_type <> 'disable_payg'""",
        (contract_id,),
    ).fetchone()
    return row[0] if row else None


def newest_token(conn: psycopg.Connection, unit_id: int) -> tuple[str, str, int, int] | None:
    """The unit's token of the highest count: (token, type, days, count), or None."""
    row = conn.execute(
        "select token, token_type, value_days, count from tokens where unit_id = %s order by count desc limit 1",
        (unit_id,),
    ).fetchone()
    return (str(row[0]), str(row[1]), int(row[2]), int(row[3])) if row else None


def insert_token(
    conn: psycopg.Connection, unit_id: int, contract_id: int, inbox_id: int | None, token_type: str, days: int,
    count: int, token: str, created_at: datetime | None = None,
) -> int:  # fmt: skip
    row = conn.execute(
        """with counted as (update units set token_count = %(count)s where id = %(unit)s)
           insert into tokens (unit_id, contract_id, inbox_id, token_type, value_days, count, token, created_at)
           values (%(unit)s, %(contract)s, %(inbox)s, %(type)s, %(days)s, %(count)s, %(token)s,
                   coalesce(%(at)s, paygo_now())) returning id""",
        {"count": count, "unit": unit_id, "contract": contract_id, "inbox": inbox_id, "type": token_type,
         "days": days, "token": token, "at": created_at},
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


def insert_outbox(
    conn: psycopg.Connection, token_id: int, contract_id: int, deliveries: list[tuple[str, str, str, str]],
    history_at: datetime | None = None,
) -> None:  # fmt: skip
    """Deliveries of a token: (channel, kind, recipient, body) each, in one round trip. With
    ``history_at`` they are the record of a past delivery (a backfilled history) and are never sent."""
    state = "pending" if history_at is None else "history"
    with conn.cursor() as cur:
        cur.executemany(
            """insert into outbox (channel, kind, token_id, contract_id, recipient, body, state, created_at, sent_at)
               values (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, paygo_now()), %s)""",
            [
                (channel, kind, token_id, contract_id, recipient, body, state, history_at, history_at)
                for channel, kind, recipient, body in deliveries
            ],
        )


def last_outbox_id(conn: psycopg.Connection) -> int:
    row = conn.execute("select coalesce(max(id), 0) from outbox").fetchone()
    return int(row[0]) if row else 0


def keep_as_history(conn: psycopg.Connection, after_outbox_id: int) -> None:
    """Tokens whose deliveries came after ``after_outbox_id`` belong to a backfilled past: dated at the
    contract's signing, their pending deliveries kept as history and never sent."""
    conn.execute(
        """with t as (update tokens t set created_at = c.signed_on from contracts c
                       where c.id = t.contract_id
                         and t.id in (select token_id from outbox where id > %(after)s)
                   returning t.id, t.created_at)
           update outbox o set state = 'history', created_at = t.created_at, sent_at = t.created_at
             from t where t.id = o.token_id and o.state = 'pending'""",
        {"after": after_outbox_id},
    )


def record_goodwill(
    conn: psycopg.Connection, contract_id: int, token_id: int, days: int, reason: str, by: str, by_user_id: int | None
) -> int:
    """A goodwill grant and the contract's running total of free days."""
    conn.execute("update contracts set goodwill_days = goodwill_days + %s where id = %s", (days, contract_id))
    row = conn.execute(
        """insert into goodwill_grants (contract_id, token_id, days, reason, granted_by, granted_by_user_id)
           values (%s, %s, %s, %s, %s, %s) returning id""",
        (contract_id, token_id, days, reason, by, by_user_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class IssuedToken:
    id: int
    token_type: str
    value_days: int
    count: int
    token: str


def tokens_of_contract(conn: psycopg.Connection, contract_id: int) -> list[IssuedToken]:
    with conn.cursor(row_factory=class_row(IssuedToken)) as cur:
        return cur.execute(
            "select id, token_type, value_days, count, token from tokens where contract_id = %s order by count",
            (contract_id,),
        ).fetchall()


@dataclass
class TokenToResend:
    token: str
    value_days: int
    serial: str
    account_number: str
    language: str


def token_to_resend(conn: psycopg.Connection, token_id: int) -> TokenToResend | None:
    """A token with what its resend SMS says (its unit, account and the customer's language)."""
    with conn.cursor(row_factory=class_row(TokenToResend)) as cur:
        return cur.execute(
            """select t.token, t.value_days, u.serial, c.account_number, cu.language
               from tokens t join units u on u.id = t.unit_id join contracts c on c.id = t.contract_id
               join customers cu on cu.id = c.customer_id where t.id = %s""",
            (token_id,),
        ).fetchone()


def goodwill_since(conn: psycopg.Connection, contract_id: int, days: int) -> int:
    """Goodwill days given to the contract in the last ``days`` days."""
    row = conn.execute(
        """select coalesce(sum(days), 0) from goodwill_grants
            where contract_id = %s and created_at > paygo_now() - make_interval(days => %s)""",
        (contract_id, days),
    ).fetchone()
    return int(row[0]) if row else 0
