"""All SQL of customer SMS: reminders due and sent, and a unit's SMS log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg.rows import class_row


@dataclass
class Due:
    contract_id: int
    account_number: str
    credit_end: datetime  # contracts.credit_end: when the light stops as the tokens gave it
    phone: str | None
    language: str


def credit_ending(conn: psycopg.Connection, start: datetime, end: datetime) -> list[Due]:
    """Active contracts whose credit (contracts.credit_end: the one definition, docs/credit_end.md) ends
    at or after ``start`` and before ``end`` (ended, repossessed, returned, written-off and paid-off
    contracts are not active); the SMS goes to the customer's first number."""
    with conn.cursor(row_factory=class_row(Due)) as cur:
        return cur.execute(
            """select c.id as contract_id, c.account_number, c.credit_end,
                      sms_phone(cu.id) as phone, cu.language
               from contracts c join customers cu on cu.id = c.customer_id
               where c.state = 'active' and c.credit_end >= %s and c.credit_end < %s
               order by c.id""",
            (start, end),
        ).fetchall()


def claim_reminder(conn: psycopg.Connection, contract_id: int, credit_until: date, days_before: int) -> bool:
    """True if this reminder was not sent yet (and is now ours to send): the primary key makes it once."""
    row = conn.execute(
        """insert into sms_reminders (contract_id, credit_until, days_before) values (%s, %s, %s)
           on conflict do nothing returning 1""",
        (contract_id, credit_until, days_before),
    ).fetchone()
    return row is not None


def set_reminder_outbox(
    conn: psycopg.Connection, contract_id: int, credit_until: date, days_before: int, outbox_id: int
) -> None:
    conn.execute(
        """update sms_reminders set outbox_id = %s
           where contract_id = %s and credit_until = %s and days_before = %s""",
        (outbox_id, contract_id, credit_until, days_before),
    )


@dataclass
class SmsRow:
    outbox_id: int
    kind: str
    recipient: str
    body: str
    state: str
    created_at: datetime
    sent_at: datetime | None


def unit_serial(conn: psycopg.Connection, unit_id: int) -> str | None:
    row = conn.execute("select serial from units where id = %s", (unit_id,)).fetchone()
    return None if row is None else str(row[0])


def unit_id_of(conn: psycopg.Connection, serial: str) -> int | None:
    row = conn.execute("select id from units where serial = %s", (serial,)).fetchone()
    return None if row is None else int(row[0])


def sms_of_unit(conn: psycopg.Connection, unit_id: int, limit: int = 50) -> list[SmsRow]:
    """The SMS of every contract the unit has had, newest first."""
    with conn.cursor(row_factory=class_row(SmsRow)) as cur:
        return cur.execute(
            """select o.id as outbox_id, o.kind, o.recipient, o.body, o.state, o.created_at,
                      coalesce(o.acked_at, o.sent_at) as sent_at
               from outbox o
               where o.channel = 'sms' and o.contract_id in (select id from contracts where unit_id = %s)
               order by o.id desc limit %s""",
            (unit_id, limit),
        ).fetchall()
