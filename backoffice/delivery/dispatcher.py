"""The outbox dispatcher: sends due deliveries, tracks MQTT acknowledgements, retries.

SMS goes through an ``SmsGateway`` (a provider's API in production; ``DevSmsGateway`` records
messages in ``sms_messages`` for the UI, the API and the tests). A token command goes to the
unit's command topic (docs/wire_protocol.md) with QoS 1 and is sent again until the unit answers on
``.../cmd/ack`` with ``{"outbox_id": N}``: after ``retry_after``, then twice as long each time up to
``retry_max`` (a unit out of GSM coverage for hours is not hammered every minute); once
``max_attempts`` sends went unanswered it is marked failed, which the unit page shows so that the
call centre can resend (the SMS still carries the token to the customer). SMS that can wait
(reminders and notices: no token, no receipt) are held during the company's quiet hours and go out
when they end; tokens and receipts are never held. ``Policy.from_settings`` reads all of it from the
settings (PAYGO_DELIVERY_*, PAYGO_SMS_QUIET_HOURS).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import psycopg

import protocol
from backoffice import clock
from backoffice.delivery import repository
from backoffice.hours import QuietHours

log = logging.getLogger(__name__)


class SmsGateway(Protocol):
    def send(self, conn: psycopg.Connection, outbox_id: int, to: str, body: str) -> str:
        """Send (or hand to the provider); returns the provider's message id. Raises on failure."""
        ...


class DevSmsGateway:
    """Development gateway: 'sends' by recording the message (viewable at /sms and /api/sms)."""

    def send(self, conn: psycopg.Connection, outbox_id: int, to: str, body: str) -> str:
        return f"dev-{repository.record_sms(conn, outbox_id, to, body)}"


Publish = Callable[[str, str], None]  # (unit serial, JSON payload) -> published with QoS 1, or raises


# SMS that never wait for the morning: a token (whatever its kind) and a payment's receipt.
NEVER_HELD = frozenset({"token", "receipt", "paid_off", "token_resend"})


def may_wait(row: repository.OutboxRow) -> bool:
    """A reminder or a notice (no token, no receipt): held through the quiet hours."""
    return row.channel == "sms" and row.token_id is None and row.kind not in NEVER_HELD


@dataclass(frozen=True)
class Policy:
    """How deliveries are retried, and when customers' SMS that can wait are held."""

    retry_after: timedelta = timedelta(seconds=60)
    retry_max: timedelta = timedelta(hours=1)
    max_attempts: int = 10
    quiet: QuietHours | None = None

    @classmethod
    def from_settings(cls, settings: Any, retry_after: timedelta | None = None) -> Policy:
        return cls(
            retry_after=retry_after or timedelta(seconds=settings.delivery_retry_seconds),
            retry_max=timedelta(seconds=settings.delivery_retry_max_seconds),
            max_attempts=settings.delivery_max_attempts,
            quiet=settings.quiet_hours,
        )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th send: retry_after, doubled at each send, at most retry_max."""
        return min(self.retry_after * 2 ** min(max(attempts - 1, 0), 30), max(self.retry_max, self.retry_after))


def dispatch_once(
    conn: psycopg.Connection, gateway: SmsGateway, publish: Publish, retry_after: timedelta | None = None,
    max_attempts: int | None = None, limit: int = 100, *, policy: Policy | None = None,
) -> int:  # fmt: skip
    """Send what is due, in the caller's transaction; returns how many deliveries were attempted. First
    the commands whose last send went unanswered for its whole wait are marked failed
    (``repository.give_up_stale``); SMS that may wait are held while the quiet hours last."""
    if policy is None:
        policy = Policy(retry_after=retry_after or Policy.retry_after, max_attempts=max_attempts or Policy.max_attempts)
    for outbox_id, recipient, attempts in repository.give_up_stale(conn, policy.max_attempts):
        log.warning("delivery failed outbox=%s to=%s: no acknowledgement after %s sends", outbox_id, recipient,
                    attempts)  # fmt: skip
    due = repository.claim_due(conn, limit)
    attempted = 0
    for row in due:
        if policy.quiet is not None and may_wait(row):
            until = policy.quiet.until(clock.utc_now())
            if until is not None:
                repository.hold(conn, row.id, until)
                continue
        attempted += 1
        wait = policy.backoff(row.attempts + 1)
        try:
            if row.channel == "sms":
                gateway.send(conn, row.id, row.recipient, row.body)
                repository.mark_sent(conn, row.id, final=True, retry_after=wait)
            else:
                if row.attempts >= policy.max_attempts:
                    repository.mark_error(conn, row.id, f"no acknowledgement after {row.attempts} sends", wait,
                                          give_up=True)  # fmt: skip
                    continue
                command = protocol.parse_command(row.body).model_copy(update={"outbox_id": row.id})
                publish(row.recipient, protocol.encode_command(command))
                repository.mark_sent(conn, row.id, final=False, retry_after=wait)
        except Exception as err:  # noqa: BLE001 - a failed delivery is retried, never crashes the loop
            log.warning("delivery failed outbox=%s channel=%s error=%s", row.id, row.channel, err)
            repository.mark_error(conn, row.id, str(err)[:500], wait, give_up=row.attempts + 1 >= policy.max_attempts)
    return attempted


def handle_ack(conn: psycopg.Connection, serial: str, payload: bytes) -> bool:
    """A unit's ``cmd/ack`` message. Malformed acks are ignored (logged), never fatal."""
    try:
        ack = protocol.parse_ack(payload)
    except protocol.ProtocolError as err:
        log.warning("ignored ack from %s: %s", serial, err)
        return False
    return repository.mark_acked(conn, ack.outbox_id, serial)
