"""All SQL of the audit trail (``payment_audit``): one row per decision, by staff or by the platform."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def record(conn: psycopg.Connection, actor: str, action: str, inbox_id: int | None, detail: dict[str, Any]) -> None:
    """``actor`` did ``action`` (to the payment ``inbox_id``, if any), in the caller's transaction."""
    conn.execute(
        "insert into payment_audit (actor, action, inbox_id, detail) values (%s, %s, %s, %s)",
        (actor, action, inbox_id, Jsonb(detail)),
    )
