"""SQL of the OpenPAYGO Metrics path and of reading telemetry back (the rows themselves are written by
ingest/writer.py and ingest/bulk.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class MetricsUnit:
    """A unit as the Metrics path checks a request of it."""

    id: int
    key_enc: bytes | None  # its OpenPAYGO key, encrypted
    created_at: datetime
    simple_auth: bool  # its product accepts simple auth ('sa')
    last_request_count: int | None  # the highest accepted so far, each on its own
    last_request_timestamp: int | None


def lock_unit(conn: psycopg.Connection, serial: str) -> MetricsUnit | None:
    """The unit of ``serial``, row-locked so that two requests of one unit are checked for replay one
    after the other."""
    with conn.cursor(row_factory=class_row(MetricsUnit)) as cur:
        return cur.execute(
            """select u.id, u.openpaygo_key_enc as key_enc, u.created_at, p.metrics_simple_auth as simple_auth,
                      m.last_request_count, m.last_request_timestamp
               from units u join products p on p.id = u.product_id
                    left join metrics_state m on m.unit_id = u.id
               where u.serial = %s
               for no key update of u""",
            (serial,),
        ).fetchone()


def save_request(conn: psycopg.Connection, unit_id: int, count: int | None, timestamp: int | None) -> None:
    """Record an accepted request's count and timestamp; one it did not carry keeps its last value
    (so that a request carrying only the other cannot reset it)."""
    conn.execute(
        """insert into metrics_state (unit_id, last_request_count, last_request_timestamp) values (%s, %s, %s)
           on conflict (unit_id) do update set
               last_request_count = coalesce(excluded.last_request_count, metrics_state.last_request_count),
               last_request_timestamp = coalesce(excluded.last_request_timestamp,
                                                 metrics_state.last_request_timestamp),
               updated_at = now()""",
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
