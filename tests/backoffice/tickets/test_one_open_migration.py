"""Migration 0040 on a database that already holds duplicate open tickets (what flapping alerts left): the
oldest of each unit and kind stays open, the others are cancelled with the reason, their alerts point at
the one kept, and the unique index then holds."""

from __future__ import annotations

import psycopg
import pytest

from backoffice.config import Settings
from backoffice.migrate import available
from tests.support.field import agent, sold_lamp


def test_migration_0040_keeps_the_oldest_open_ticket_of_a_unit_and_kind(
    settings: Settings, conn: psycopg.Connection
) -> None:
    a = agent(conn, settings.database_url, "anna", "A1")
    _, _, unit = sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina Odhiambo")
    conn.execute("drop index tickets_one_open")  # the database as it was before 0040
    ids = [
        conn.execute(
            """insert into tickets (unit_id, kind, source, opened_by, opened_at, due_at)
               values (%s, %s, 'alert', 'fleet-health', paygo_now() - %s * interval '1 day', paygo_now())
               returning id""",
            (unit, kind, days),
        ).fetchone()[0]  # type: ignore[index]
        for kind, days in (("repair", 3), ("repair", 2), ("repair", 1), ("battery_swap", 1))
    ]
    conn.execute(
        """insert into health_alerts (unit_id, kind, opened_on, last_seen_on, evidence, ticket_id)
           values (%s, 'tamper', paygo_now()::date, paygo_now()::date, '{}', %s)""",
        (unit, ids[2]),
    )
    (sql,) = [m.sql for m in available() if m.version == "0040"]
    conn.execute(sql.encode())
    rows = conn.execute("select id, state, outcome from tickets order by id").fetchall()
    assert rows == [
        (ids[0], "open", None),
        (ids[1], "cancelled", f"duplicate of ticket #{ids[0]}"),
        (ids[2], "cancelled", f"duplicate of ticket #{ids[0]}"),
        (ids[3], "open", None),
    ]
    assert conn.execute("select ticket_id from health_alerts").fetchone() == (ids[0],)
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("""insert into tickets (unit_id, kind, source, opened_by, due_at)
                        values (%s, 'repair', 'alert', 'x', paygo_now())""", (unit,))  # fmt: skip
