"""All SQL of the audit trail (``audit_log``, append-only: a trigger refuses UPDATE, DELETE and TRUNCATE)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from backoffice.audit.schemas import Actor, AuditRow


def record(
    conn: psycopg.Connection, actor: Actor, action: str, entity: str, entity_id: object = None,
    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """``actor`` did ``action`` to the ``entity`` row ``entity_id`` (its state before and after), in the
    caller's transaction: the trail has the change exactly when the change is committed."""
    conn.execute(
        """insert into audit_log (actor, actor_user_id, action, entity, entity_id, before, after, request_id,
                                  client_addr)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (actor.name, actor.user_id, action, entity, None if entity_id is None else str(entity_id),
         None if before is None else Jsonb(before), None if after is None else Jsonb(after), actor.request_id,
         actor.client_addr),
    )  # fmt: skip


def browse(
    conn: psycopg.Connection, *, actor: str | None = None, entity: str | None = None, entity_id: str | None = None,
    before_id: int | None = None, limit: int = 100,
) -> list[AuditRow]:  # fmt: skip
    """Newest first; ``before_id`` pages back."""
    with conn.cursor(row_factory=class_row(AuditRow)) as cur:
        return cur.execute(
            """select id, at, actor, action, entity, entity_id, before, after, request_id, client_addr
                 from audit_log
                where (%(actor)s::text is null or actor = %(actor)s)
                  and (%(entity)s::text is null or entity = %(entity)s)
                  and (%(entity_id)s::text is null or entity_id = %(entity_id)s)
                  and (%(before_id)s::bigint is null or id < %(before_id)s)
                order by id desc limit %(limit)s""",
            {"actor": actor, "entity": entity, "entity_id": entity_id, "before_id": before_id, "limit": limit},
        ).fetchall()
