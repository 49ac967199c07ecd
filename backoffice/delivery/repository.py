"""All SQL of the delivery outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row


@dataclass
class OutboxRow:
    id: int
    channel: str
    kind: str  # the SMS template (token, receipt, reminder, ...) or 'command'
    token_id: int | None  # None: an SMS of no token (a reminder)
    recipient: str
    body: str
    state: str
    attempts: int


def claim_due(conn: psycopg.Connection, limit: int = 100) -> list[OutboxRow]:
    """Deliveries due now, locked for this transaction (other dispatchers skip them)."""
    with conn.cursor(row_factory=class_row(OutboxRow)) as cur:
        return cur.execute(
            """select id, channel, kind, token_id, recipient, body, state, attempts from outbox
               where state in ('pending', 'sent') and next_attempt_at <= paygo_now()
               order by next_attempt_at limit %s for update skip locked""",
            (limit,),
        ).fetchall()


def mark_sent(conn: psycopg.Connection, outbox_id: int, final: bool, retry_after: timedelta) -> None:
    """Sent; ``final`` when no acknowledgement is expected (SMS), else due again after ``retry_after``."""
    conn.execute(
        """update outbox set state = %s, attempts = attempts + 1, sent_at = paygo_now(), last_error = null,
                  next_attempt_at = paygo_now() + %s
           where id = %s""",
        ("acked" if final else "sent", retry_after, outbox_id),
    )


def mark_error(conn: psycopg.Connection, outbox_id: int, error: str, retry_after: timedelta, give_up: bool) -> None:
    conn.execute(
        """update outbox set state = %s, attempts = attempts + 1, last_error = %s, next_attempt_at = paygo_now() + %s
           where id = %s""",
        ("failed" if give_up else "pending", error, retry_after, outbox_id),
    )


def mark_acked(conn: psycopg.Connection, outbox_id: int, serial: str) -> bool:
    """The unit confirmed the command; only the unit the command went to can confirm it."""
    row = conn.execute(
        """update outbox set state = 'acked', acked_at = paygo_now()
           where id = %s and channel = 'mqtt' and recipient = %s and state <> 'acked' returning id""",
        (outbox_id, serial),
    ).fetchone()
    return row is not None


def give_up_stale(conn: psycopg.Connection, max_attempts: int) -> list[tuple[int, str, int]]:
    """Deliveries sent ``max_attempts`` times whose last wait for an acknowledgement is over: failed, with
    the reason, for the unit page to show. Returns (id, recipient, attempts) of each."""
    return conn.execute(
        """update outbox set state = 'failed', last_error = 'no acknowledgement after ' || attempts || ' sends'
            where id in (select id from outbox where state = 'sent' and attempts >= %s
                            and next_attempt_at <= paygo_now() for update skip locked)
           returning id, recipient, attempts""",
        (max_attempts,),
    ).fetchall()


def hold(conn: psycopg.Connection, outbox_id: int, until: datetime) -> None:
    """Not now (quiet hours): due again at ``until``, no attempt counted."""
    conn.execute("update outbox set next_attempt_at = %s where id = %s", (until, outbox_id))


def record_sms(conn: psycopg.Connection, outbox_id: int | None, to: str, body: str) -> int:
    row = conn.execute(
        "insert into sms_messages (outbox_id, to_number, body) values (%s, %s, %s) returning id", (outbox_id, to, body)
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class SmsMessage:
    id: int
    to_number: str
    body: str
    sent_at: datetime


def recent_sms(conn: psycopg.Connection, limit: int = 100, to: str | None = None) -> list[SmsMessage]:
    with conn.cursor(row_factory=class_row(SmsMessage)) as cur:
        return cur.execute(
            """select id, to_number, body, sent_at from sms_messages
               where %(to)s::text is null or to_number = %(to)s order by id desc limit %(limit)s""",
            {"to": to, "limit": limit},
        ).fetchall()


def requeue_token(conn: psycopg.Connection, token_id: int, sms_body: str | None = None) -> int:
    """The call centre resends a token: its deliveries go out again (new outbox rows); the SMS with
    ``sms_body`` (the resend's own text) when given, else as first written."""
    cur = conn.execute(
        """insert into outbox (channel, kind, token_id, contract_id, recipient, body)
           select distinct on (channel) channel,
                  case when channel = 'sms' and %(body)s::text is not null then 'token_resend' else kind end,
                  token_id, contract_id, recipient,
                  case when channel = 'sms' then coalesce(%(body)s, body) else body end
           from outbox where token_id = %(token)s order by channel, id""",
        {"token": token_id, "body": sms_body},
    )
    return cur.rowcount


def queue_sms(
    conn: psycopg.Connection, recipient: str, body: str, kind: str, contract_id: int | None, token_id: int | None = None
) -> int:
    """An SMS that is not a token's first delivery (a reminder), sent by the dispatcher like any other."""
    row = conn.execute(
        """insert into outbox (channel, kind, token_id, contract_id, recipient, body)
           values ('sms', %s, %s, %s, %s, %s) returning id""",
        (kind, token_id, contract_id, recipient, body),
    ).fetchone()
    assert row is not None
    return int(row[0])
