"""The audit trail is append-only: the database itself refuses to change or remove a row."""

from __future__ import annotations

import psycopg
import pytest

from backoffice.audit import repository
from backoffice.audit.schemas import SYSTEM, Actor


def test_the_trigger_refuses_update_delete_and_truncate(conn: psycopg.Connection) -> None:
    with conn.transaction():
        repository.record(conn, Actor("fred", None, "req-1", "10.0.0.9"), "assign", "payment", 7,
                          before={"state": "open"}, after={"state": "assigned"})  # fmt: skip
        repository.record(conn, SYSTEM, "settled", "payment", 8)
    for sql in ("update audit_log set actor = 'someone else'", "delete from audit_log where id = 1",
                "truncate audit_log"):  # fmt: skip
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"), conn.transaction():
            conn.execute(sql)
    rows = repository.browse(conn)
    assert [(r.actor, r.action, r.entity_id) for r in rows] == [("system", "settled", "8"), ("fred", "assign", "7")]
    assert rows[1].before == {"state": "open"} and rows[1].client_addr == "10.0.0.9" and rows[1].request_id == "req-1"
    assert [r.id for r in repository.browse(conn, before_id=rows[0].id)] == [rows[1].id]
    assert repository.browse(conn, actor="nobody") == []
