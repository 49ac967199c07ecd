"""The outbox dispatcher: sends due deliveries, tracks MQTT acknowledgements, retries.

SMS goes through an ``SmsGateway`` (a provider's API in production; ``DevSmsGateway`` records
messages in ``sms_messages`` for the UI, the API and the tests). A token command goes to the
unit's command topic (DESIGN §5) with QoS 1 and is due again after ``retry_after`` until the unit
answers on ``.../cmd/ack`` with ``{"outbox_id": N}``; after ``max_attempts`` it is marked failed
(the SMS still carries the token to the customer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

import psycopg

import protocol
from backoffice.delivery import repository

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


def dispatch_once(
    conn: psycopg.Connection, gateway: SmsGateway, publish: Publish, retry_after: timedelta = timedelta(seconds=60),
    max_attempts: int = 10, limit: int = 100,
) -> int:  # fmt: skip
    """Send what is due, in the caller's transaction; returns how many deliveries were attempted."""
    due = repository.claim_due(conn, limit)
    for row in due:
        try:
            if row.channel == "sms":
                gateway.send(conn, row.id, row.recipient, row.body)
                repository.mark_sent(conn, row.id, final=True, retry_after=retry_after)
            else:
                if row.attempts >= max_attempts:
                    repository.mark_error(conn, row.id, "no acknowledgement", retry_after, give_up=True)
                    continue
                command = protocol.parse_command(row.body).model_copy(update={"outbox_id": row.id})
                publish(row.recipient, protocol.encode_command(command))
                repository.mark_sent(conn, row.id, final=False, retry_after=retry_after)
        except Exception as err:  # noqa: BLE001 - a failed delivery is retried, never crashes the loop
            log.warning("delivery failed outbox=%s channel=%s error=%s", row.id, row.channel, err)
            repository.mark_error(conn, row.id, str(err)[:500], retry_after, give_up=row.attempts + 1 >= max_attempts)
    return len(due)


def handle_ack(conn: psycopg.Connection, serial: str, payload: bytes) -> bool:
    """A unit's ``cmd/ack`` message. Malformed acks are ignored (logged), never fatal."""
    try:
        ack = protocol.parse_ack(payload)
    except protocol.ProtocolError as err:
        log.warning("ignored ack from %s: %s", serial, err)
        return False
    return repository.mark_acked(conn, ack.outbox_id, serial)
