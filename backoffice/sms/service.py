"""Reminders before a customer's credit runs out, and the SMS log the unit page shows."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import psycopg

from backoffice import clock
from backoffice.delivery import repository as delivery
from backoffice.sms import repository, text
from backoffice.sms.schemas import ReminderRun, SmsEntry, SmsLog

log = logging.getLogger(__name__)


def offset_for(days_left: int, offsets: list[int]) -> int | None:
    """The reminder a contract with ``days_left`` is due: the nearest offset not below it (with 3,1: a
    contract 2 days from the end still gets the 3-day one if the job missed it, never both at once)."""
    fitting = [d for d in offsets if d >= days_left]
    return min(fitting) if fitting else None


def send_reminders(conn: psycopg.Connection, today: date, offsets: list[int]) -> ReminderRun:
    """Queue a reminder SMS for every active contract whose credit ends within the largest offset, in
    the caller's transaction: once per contract, credit period (its end day) and offset. The end is the
    one the contract's tokens gave (contracts.credit_end), told as the company's day (credit.credit_day),
    as the customer's receipt told it."""
    run = ReminderRun(today=today, offsets=sorted(offsets, reverse=True), considered=0, queued=0, already_sent=0,
                      no_phone=0)  # fmt: skip
    if not offsets:
        return run
    window = (
        clock.start_of_day(today + timedelta(days=1)),
        clock.start_of_day(today + timedelta(days=max(offsets) + 1)),
    )
    for due in repository.credit_ending(conn, *window):
        run.considered += 1
        until = clock.business_day(due.credit_end)
        days_left = (until - today).days
        offset = offset_for(days_left, offsets)
        if offset is None:
            continue
        if not due.phone:
            run.no_phone += 1
            continue
        if not repository.claim_reminder(conn, due.contract_id, until, offset):
            run.already_sent += 1
            continue
        sms = text.render("reminder", due.language, until=text.day(until), days_left=days_left,
                          account=due.account_number)  # fmt: skip
        outbox_id = delivery.queue_sms(conn, due.phone, sms.body, "reminder", due.contract_id)
        repository.set_reminder_outbox(conn, due.contract_id, until, offset, outbox_id)
        run.queued += 1
    log.info("sms reminders today=%s considered=%s queued=%s already=%s no_phone=%s", today, run.considered,
             run.queued, run.already_sent, run.no_phone)  # fmt: skip
    return run


def unit_panel(conn: psycopg.Connection, unit_id: int, limit: int = 50) -> SmsLog:
    """The unit page's SMS log: what was sent (or is queued) to the unit's customers, newest first."""
    serial = repository.unit_serial(conn, unit_id)
    if serial is None:
        raise LookupError(f"no unit {unit_id}")
    entries = []
    for row in repository.sms_of_unit(conn, unit_id, limit):
        seg = text.segments(row.body)
        entries.append(SmsEntry(outbox_id=row.outbox_id, kind=row.kind, recipient=row.recipient, body=row.body,
                                state=row.state, created_at=row.created_at, sent_at=row.sent_at,
                                encoding=seg.encoding, segments=seg.count))  # fmt: skip
    return SmsLog(unit_id=unit_id, serial=serial, entries=entries)
