"""SQL of the OpenPAYGO Metrics path and of reading telemetry back (the rows themselves are written by
ingest/writer.py and ingest/bulk.py)."""

from __future__ import annotations

from datetime import datetime

import psycopg


def lock_unit(
    conn: psycopg.Connection, serial: str
) -> tuple[int, bytes | None, datetime, int | None, int | None] | None:
    """(unit id, encrypted key, created at, last request count, last request timestamp), row-locked
    so that two requests of one unit are checked for replay one after the other."""
    row = conn.execute(
        """select u.id, u.openpaygo_key_enc, u.created_at, m.last_request_count, m.last_request_timestamp
           from units u left join metrics_state m on m.unit_id = u.id where u.serial = %s
           for no key update of u""",
        (serial,),
    ).fetchone()
    if row is None:
        return None
    return int(row[0]), None if row[1] is None else bytes(row[1]), row[2], row[3], row[4]


def save_request(conn: psycopg.Connection, unit_id: int, count: int | None, timestamp: int | None) -> None:
    conn.execute(
        """insert into metrics_state (unit_id, last_request_count, last_request_timestamp) values (%s, %s, %s)
           on conflict (unit_id) do update set last_request_count = excluded.last_request_count,
               last_request_timestamp = excluded.last_request_timestamp, updated_at = now()""",
        (unit_id, count, timestamp),
    )


def waiting_tokens(conn: psycopg.Connection, unit_id: int) -> list[str]:
    """Tokens whose command the unit has not acknowledged yet, oldest first."""
    rows = conn.execute(
        """select distinct t.token, t.count from tokens t join outbox o on o.token_id = t.id
           where t.unit_id = %s and o.channel = 'mqtt' and o.state in ('pending', 'sent') order by t.count""",
        (unit_id,),
    ).fetchall()
    return [str(token) for token, _ in rows]


def count_readings(conn: psycopg.Connection, unit_ids: list[int], start: datetime, end: datetime) -> int:
    """Readings of these units in [start, end)."""
    row = conn.execute(
        "select count(*) from telemetry where unit_id = any(%s) and ts >= %s and ts < %s", (unit_ids, start, end)
    ).fetchone()
    return int(row[0]) if row else 0
