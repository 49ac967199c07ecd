"""All SQL of payment intake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from backoffice.customers.search import search


@dataclass
class InboxRow:
    id: int
    provider: str
    provider_txn_id: str
    received_at: datetime
    status: str
    reason: str | None
    response: dict[str, Any] | None
    account: str | None
    amount: int | None
    currency: str | None
    paid_at: datetime | None
    contract_id: int | None


_INBOX = """id, provider, provider_txn_id, received_at, status, reason, response, account, amount, currency, paid_at,
            contract_id"""


def insert_inbox(
    conn: psycopg.Connection, provider: str, txn_id: str, raw: bytes, status: str = "pending"
) -> int | None:
    """The raw callback, first of all. None if this (provider, transaction) is already there: the
    insert waits for a concurrent first copy to commit, so the caller then reads its outcome."""
    row = conn.execute(
        """insert into payment_inbox (provider, provider_txn_id, raw, status) values (%s, %s, %s, %s)
           on conflict (provider, provider_txn_id) do nothing returning id""",
        (provider, txn_id, raw, status),
    ).fetchone()
    return None if row is None else int(row[0])


def get_inbox(conn: psycopg.Connection, provider: str, txn_id: str) -> InboxRow | None:
    with conn.cursor(row_factory=class_row(InboxRow)) as cur:
        return cur.execute(
            f"select {_INBOX} from payment_inbox where provider = %s and provider_txn_id = %s", (provider, txn_id)
        ).fetchone()


def finish_inbox(
    conn: psycopg.Connection, inbox_id: int, status: str, response: dict[str, Any], reason: str | None = None,
    account: str | None = None, amount: int | None = None, currency: str | None = None,
    paid_at: datetime | None = None, payer: str | None = None, contract_id: int | None = None,
) -> None:  # fmt: skip
    conn.execute(
        """update payment_inbox set status = %s, response = %s, reason = %s, account = %s, amount = %s,
                  currency = %s, paid_at = %s, payer = %s, contract_id = %s
           where id = %s""",
        (status, Jsonb(response), reason, account, amount, currency, paid_at, payer, contract_id, inbox_id),
    )


def insert_unmatched(
    conn: psycopg.Connection, inbox_id: int, kind: str = "unmatched", reverses: tuple[str, str] | None = None
) -> None:
    """The payment waits for finance: it matched no account (``unmatched``) or was ``held``; a held
    reversal names the (provider, transaction) it would undo."""
    provider, txn = reverses or (None, None)
    conn.execute(
        "insert into unmatched_payments (inbox_id, kind, reverses_provider, reverses) values (%s, %s, %s, %s)",
        (inbox_id, kind, provider, txn),
    )


def close_unmatched_of(conn: psycopg.Connection, inbox_id: int, state: str, note: str) -> None:
    """Close the open item of a payment (its money was reversed meanwhile)."""
    conn.execute(
        """update unmatched_payments set state = %s, resolved_by = 'system', resolved_at = paygo_now(), note = %s
           where inbox_id = %s and state = 'open'""",
        (state, note, inbox_id),
    )


def insert_callback(conn: psycopg.Connection, provider: str, reference: str, raw: bytes) -> int:
    """A callback's raw bytes, under the payment they name (if it exists)."""
    row = conn.execute(
        """insert into payment_callbacks (inbox_id, provider, reference, raw)
           values ((select id from payment_inbox where provider = %s and provider_txn_id = %s), %s, %s, %s)
           returning id""",
        (provider, reference, provider, reference, raw),
    ).fetchone()
    assert row is not None
    return int(row[0])


def set_callback_outcome(conn: psycopg.Connection, callback_id: int, outcome: str) -> None:
    conn.execute("update payment_callbacks set outcome = %s where id = %s", (outcome[:500], callback_id))


def mark_error(conn: psycopg.Connection, provider: str, txn_id: str, reason: str) -> None:
    """A stored callback whose processing failed, with why (finance and the logs take it from here)."""
    conn.execute(
        """update payment_inbox set status = 'error', reason = %s
           where provider = %s and provider_txn_id = %s and status in ('received', 'error')""",
        (reason, provider, txn_id),
    )


def insert_validation(conn: psycopg.Connection, provider: str, raw: bytes, code: str, reason: str | None) -> None:
    # A validation moves no money: its log line need not wait for the disk (no fsync per validation).
    conn.execute("set local synchronous_commit to off")
    conn.execute(
        "insert into payment_validations (provider, raw, result_code, reason) values (%s, %s, %s, %s)",
        (provider, raw, code, reason),
    )


def recent_inbox(conn: psycopg.Connection, limit: int = 100, status: str | None = None) -> list[InboxRow]:
    with conn.cursor(row_factory=class_row(InboxRow)) as cur:
        return cur.execute(
            f"""select {_INBOX} from payment_inbox where %(status)s::text is null or status = %(status)s
                order by id desc limit %(limit)s""",
            {"status": status, "limit": limit},
        ).fetchall()


def lock_inbox(conn: psycopg.Connection, provider: str, txn_id: str) -> InboxRow | None:
    with conn.cursor(row_factory=class_row(InboxRow)) as cur:
        return cur.execute(
            f"select {_INBOX} from payment_inbox where provider = %s and provider_txn_id = %s for update",
            (provider, txn_id),
        ).fetchone()


def set_status(
    conn: psycopg.Connection, inbox_id: int, status: str, reason: str | None, contract_id: int | None = None
) -> None:
    conn.execute(
        "update payment_inbox set status = %s, reason = %s, contract_id = coalesce(%s, contract_id) where id = %s",
        (status, reason, contract_id, inbox_id),
    )


def active_accounts(conn: psycopg.Connection, limit: int = 100_000) -> list[tuple[str, str, int]]:
    """(account number, currency, a typical payment in minor units) of active contracts."""
    rows = conn.execute(
        """select c.account_number, c.currency,
                  coalesce(p.instalment_amount, p.price_per_day * 10, 10000)
           from contracts c join products p on p.id = c.product_id
           where c.state = 'active' order by c.id limit %s""",
        (limit,),
    ).fetchall()
    return [(str(a), str(c), int(m)) for a, c, m in rows]


@dataclass
class Unmatched:
    id: int
    inbox_id: int
    state: str
    provider: str
    provider_txn_id: str
    account: str | None
    amount: int | None
    currency: str | None
    paid_at: datetime | None
    reason: str | None
    kind: str  # unmatched (no account matched) or held (amount or date to be checked)
    payer: str | None = None
    received_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    note: str | None = None
    reverses: str | None = None  # a held reversal: the provider transaction it would undo …
    reverses_provider: str | None = None  # … and its provider


def unmatched(
    conn: psycopg.Connection, state: str | None = "open", for_update_id: int | None = None, kind: str | None = None,
    limit: int | None = None, item_id: int | None = None,
) -> list[Unmatched]:  # fmt: skip
    """Items waiting for finance (or decided: ``state``), oldest first; ``kind``: unmatched or held."""
    with conn.cursor(row_factory=class_row(Unmatched)) as cur:
        return cur.execute(
            """select u.id, u.inbox_id, u.state, i.provider, i.provider_txn_id, i.account, i.amount, i.currency,
                      i.paid_at, i.reason, u.kind, i.payer, i.received_at, u.resolved_by, u.resolved_at, u.note,
                      u.reverses, u.reverses_provider
               from unmatched_payments u join payment_inbox i on i.id = u.inbox_id
               where (%(state)s::text is null or u.state = %(state)s) and (%(id)s::bigint is null or u.id = %(id)s)
                 and (%(kind)s::text is null or u.kind = %(kind)s)
               order by u.id limit %(limit)s
               """
            + ("for update of u" if for_update_id is not None else ""),
            {"state": state, "id": for_update_id or item_id, "kind": kind, "limit": limit},
        ).fetchall()


def lock_payment_of_unmatched(conn: psycopg.Connection, unmatched_id: int) -> None:
    """Lock the payment row of an unmatched item, before the item itself: the order in which a
    reversal locks them too (the other order can deadlock against it)."""
    conn.execute(
        """select 1 from payment_inbox where id = (select inbox_id from unmatched_payments where id = %s)
           for update""",
        (unmatched_id,),
    )


def resolve_unmatched(
    conn: psycopg.Connection, unmatched_id: int, state: str, actor: str, contract_id: int | None, note: str | None
) -> bool:
    """Close an open item; False if it was not open (decided already: the state check is in the SQL)."""
    row = conn.execute(
        """update unmatched_payments set state = %s, resolved_by = %s, resolved_at = paygo_now(), contract_id = %s,
                  note = %s where id = %s and state = 'open' returning id""",
        (state, actor, contract_id, note, unmatched_id),
    ).fetchone()
    return row is not None


@dataclass
class Refund:
    id: int
    unmatched_id: int
    inbox_id: int
    provider: str
    provider_txn_id: str
    amount: int | None
    currency: str | None
    payer: str | None
    reason: str
    state: str  # to_refund | refunded
    decided_by: str
    decided_at: datetime
    refunded_by: str | None
    refunded_at: datetime | None
    reference: str | None


_REFUND = """select r.id, r.unmatched_id, r.inbox_id, i.provider, i.provider_txn_id, r.amount, r.currency, r.payer,
                    r.reason, r.state, r.decided_by, r.decided_at, r.refunded_by, r.refunded_at, r.reference
             from refunds r join payment_inbox i on i.id = r.inbox_id"""


def insert_refund(conn: psycopg.Connection, unmatched_id: int, inbox_id: int, reason: str, actor: str) -> int:
    """The decision to send a payment's money back (one per item: ``unique (unmatched_id)``)."""
    row = conn.execute(
        """insert into refunds (unmatched_id, inbox_id, amount, currency, payer, reason, decided_by)
           select %s, i.id, i.amount, i.currency, i.payer, %s, %s from payment_inbox i where i.id = %s
           returning id""",
        (unmatched_id, reason, actor, inbox_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def refunds(conn: psycopg.Connection, state: str | None = None, limit: int = 200) -> list[Refund]:
    with conn.cursor(row_factory=class_row(Refund)) as cur:
        return cur.execute(
            _REFUND + " where %(state)s::text is null or r.state = %(state)s order by r.id desc limit %(limit)s",
            {"state": state, "limit": limit},
        ).fetchall()


def refund(conn: psycopg.Connection, refund_id: int) -> Refund | None:
    with conn.cursor(row_factory=class_row(Refund)) as cur:
        return cur.execute(_REFUND + " where r.id = %s", (refund_id,)).fetchone()


def mark_refunded(conn: psycopg.Connection, refund_id: int, actor: str, reference: str | None) -> Refund | None:
    """The refund was carried out; None if there is no such refund still to do."""
    row = conn.execute(
        """update refunds set state = 'refunded', refunded_by = %s, refunded_at = paygo_now(), reference = %s
           where id = %s and state = 'to_refund' returning id""",
        (actor, reference, refund_id),
    ).fetchone()
    return None if row is None else refund(conn, refund_id)


@dataclass
class ContractHit:
    account_number: str
    customer: str
    phone: str | None
    serial: str
    state: str
    currency: str
    paid_total: int
    credit_end: datetime | None  # contracts.credit_end (None: no token yet, or never: paid off)


def find_contracts(conn: psycopg.Connection, query: str, limit: int = 20) -> list[ContractHit]:
    """Contracts by account number, unit serial, phone (typed any way), customer name (tolerant of
    misspelling) or national id: finance's search for where unmatched money belongs, through the one
    ranked, index-backed search box (backoffice/customers/search.py), in its order."""
    accounts = list(dict.fromkeys(h.account_number for h in search(conn, query, limit) if h.account_number))
    if not accounts:
        return []
    with conn.cursor(row_factory=class_row(ContractHit)) as cur:
        return cur.execute(
            """select c.account_number, cu.name as customer,
                      sms_phone(cu.id) as phone,
                      u.serial, c.state, c.currency, c.paid_total,
                      nullif(c.credit_end, 'infinity') as credit_end
               from contracts c join customers cu on cu.id = c.customer_id join units u on u.id = c.unit_id
               where c.account_number = any(%(accounts)s)
               order by array_position(%(accounts)s, c.account_number::text)""",
            {"accounts": accounts},
        ).fetchall()


@dataclass
class Balance:
    account_number: str
    paid_total: int
    currency: str
    days_granted: int
    credit_end: datetime | None


def balance(conn: psycopg.Connection, contract_id: int) -> Balance | None:
    with conn.cursor(row_factory=class_row(Balance)) as cur:
        return cur.execute(
            """select account_number, paid_total, currency, days_granted, nullif(credit_end, 'infinity') as credit_end
               from contracts where id = %s""",
            (contract_id,),
        ).fetchone()


@dataclass(frozen=True)
class MomoRequest:
    reference_id: str
    contract_id: int
    account: str
    amount: int
    currency: str
    payer: str


def insert_momo_request(conn: psycopg.Connection, r: MomoRequest, requested_by: str) -> None:
    conn.execute(
        """insert into momo_requests (reference_id, contract_id, account, amount, currency, payer, requested_by)
           values (%s, %s, %s, %s, %s, %s, %s)""",
        (r.reference_id, r.contract_id, r.account, r.amount, r.currency, r.payer, requested_by),
    )


def momo_request(conn: psycopg.Connection, reference_id: str) -> MomoRequest | None:
    with conn.cursor(row_factory=class_row(MomoRequest)) as cur:
        return cur.execute(
            """select reference_id, contract_id, account, amount, currency, payer from momo_requests
               where reference_id = %s""",
            (reference_id,),
        ).fetchone()


def inbox_between(conn: psycopg.Connection, provider: str, start: datetime, end: datetime) -> list[InboxRow]:
    with conn.cursor(row_factory=class_row(InboxRow)) as cur:
        return cur.execute(
            f"""select {_INBOX} from payment_inbox
                where provider = %s and paid_at >= %s and paid_at <= %s and status <> 'rejected'""",
            (provider, start, end),
        ).fetchall()


def pending_references(conn: psycopg.Connection, provider: str, older_than: timedelta) -> list[str]:
    rows = conn.execute(
        """select provider_txn_id from payment_inbox
           where provider = %s and status = 'pending' and received_at <= paygo_now() - %s order by id""",
        (provider, older_than),
    ).fetchall()
    return [str(r[0]) for r in rows]


def refund_settled_by_reversal(conn: psycopg.Connection, inbox_id: int, reversal: str) -> bool:
    """A refund still to do becomes done by the provider's own reversal; False if it had been paid out."""
    row = conn.execute(
        """update refunds set state = 'refunded', refunded_by = 'provider reversal', refunded_at = paygo_now(),
                  reference = %s
            where inbox_id = %s and state = 'to_refund' returning id""",
        (reversal, inbox_id),
    ).fetchone()
    return row is not None
