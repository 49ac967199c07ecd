"""All SQL of ingest: a batch of readings goes in by binary COPY into a staging table, then
insert-on-conflict into ``telemetry``, so that a resent store-and-forward backlog adds nothing twice.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from protocol import Reading, safe_text

# Column order of a reading row as the consumer builds it.
COLUMNS = (
    "unit_id",
    "ts",
    "seq",
    "received_at",
    "batt_v",
    "batt_a",
    "soc",
    "batt_temp_c",
    "pv_v",
    "pv_w",
    "pv_wh",
    "load_wh",
    "credit_s",
    "locked",
    "rssi",
    "fw",
)
_TYPES = (
    "int8",
    "timestamptz",
    "int8",
    "timestamptz",
    "float4",
    "float4",
    "float4",
    "float4",
    "float4",
    "float4",
    "float4",
    "float4",
    "int8",
    "bool",
    "int2",
    "text",
)
_COLS = ", ".join(COLUMNS)

ReadingRow = tuple[object, ...]
# What a unit measured, by the protocol's Reading field names: the columns after (unit_id, ts, seq,
# received_at). The one list of telemetry's columns; the bulk writer and the backfill read it too.
MEASURED = COLUMNS[4:]
_measured = operator.attrgetter(*MEASURED)


def reading_row(unit_id: int, reading: Reading, received_at: datetime) -> ReadingRow:
    """The row of ``reading`` in COLUMNS order."""
    return (unit_id, reading.ts, reading.seq, received_at, *_measured(reading))


# How a day's new rollup rows merge into those already there (insert ... as d ... on conflict).
DAILY_MERGE = """on conflict (unit_id, day) do update set
    energy_in_wh = d.energy_in_wh + excluded.energy_in_wh,
    energy_out_wh = d.energy_out_wh + excluded.energy_out_wh,
    min_batt_v = least(d.min_batt_v, excluded.min_batt_v),
    max_batt_v = greatest(d.max_batt_v, excluded.max_batt_v),
    hours_low_soc = d.hours_low_soc + excluded.hours_low_soc,
    max_batt_temp_c = greatest(d.max_batt_temp_c, excluded.max_batt_temp_c),
    reports = d.reports + excluded.reports"""
# The newest reading of each unit (unit_latest): its columns, and how a newer row replaces an older.
LATEST_COLUMNS = ("unit_id", "ts", "seq", "received_at", "batt_v", "soc", "batt_temp_c", "pv_w", "credit_s", "locked",
                  "rssi", "fw")  # fmt: skip
_LATEST = ", ".join(LATEST_COLUMNS)
LATEST_MERGE = (
    "on conflict (unit_id) do update set "
    + ", ".join(f"{c} = excluded.{c}" for c in LATEST_COLUMNS[1:])
    + " where excluded.ts > unit_latest.ts"
)
LOW_SOC = 0.2  # below this state of charge a battery is "low" (deep discharge wears lead-acid fast)
REPORT_HOURS = 1 / 3  # the nominal interval between reports (20 minutes)


def _ensure_stage(conn: psycopg.Connection) -> None:
    # A temporary table lives as long as the connection; "on commit delete rows" empties it
    # after each batch, so every batch starts with an empty stage.
    conn.execute(
        "create temp table if not exists telemetry_stage (like telemetry including defaults) on commit delete rows"
    )


def write_readings(conn: psycopg.Connection, rows: Sequence[ReadingRow]) -> int:
    """Stage and insert readings inside the caller's transaction; returns the rows new to the table."""
    if not rows:
        return 0
    _ensure_stage(conn)
    with conn.cursor() as cur:
        with cur.copy(f"copy telemetry_stage ({_COLS}) from stdin (format binary)") as copy:
            copy.set_types(_TYPES)
            for row in rows:
                copy.write_row(row)
        # Readings new to the table, and their daily rollup, in one statement: a resent backlog
        # (store-and-forward) adds nothing twice, late readings update their own day.
        cur.execute(
            f"""with new as (
                    insert into telemetry ({_COLS}) select {_COLS} from telemetry_stage on conflict do nothing
                    returning unit_id, ts, batt_v, soc, batt_temp_c, pv_wh, load_wh
                ), daily as (
                    insert into telemetry_daily as d (unit_id, day, energy_in_wh, energy_out_wh, min_batt_v,
                                                      max_batt_v, hours_low_soc, max_batt_temp_c, reports)
                    select unit_id, (ts at time zone 'UTC')::date, coalesce(sum(pv_wh), 0),
                           coalesce(sum(load_wh), 0), min(batt_v), max(batt_v),
                           count(*) filter (where soc < %(low)s) * %(hours)s, max(batt_temp_c), count(*)
                      from new group by 1, 2
                    {DAILY_MERGE}
                    returning 1
                )
                select (select count(*) from new), (select count(*) from daily)""",
            {"low": LOW_SOC, "hours": REPORT_HOURS},
        )
        counts = cur.fetchone()
        inserted = int(counts[0]) if counts else 0
        # Keep the newest reading per unit for the look-up pages; an older (late) reading
        # never overwrites a newer one.
        cur.execute(
            f"""insert into unit_latest ({_LATEST}) select distinct on (unit_id) {_LATEST}
                  from telemetry_stage order by unit_id, ts desc, seq desc {LATEST_MERGE}"""
        )
    return inserted


def write_presence(conn: psycopg.Connection, rows: Sequence[tuple[int, bool, datetime]]) -> None:
    """Online/offline per unit; an older announcement (redelivered late) never overrides a newer one."""
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """insert into unit_presence (unit_id, online, changed_at) values (%s, %s, %s)
               on conflict (unit_id) do update set online = excluded.online, changed_at = excluded.changed_at
               where excluded.changed_at >= unit_presence.changed_at""",
            rows,
        )


def write_reporting(conn: psycopg.Connection, unit_id: int, at: datetime) -> None:
    """A unit that reports without a status topic (OpenPAYGO Metrics over HTTP) announces itself by
    reporting: online from its first accepted request (``changed_at`` moves only when it was offline)."""
    conn.execute(
        """insert into unit_presence (unit_id, online, changed_at) values (%s, true, %s)
           on conflict (unit_id) do update set online = true, changed_at = excluded.changed_at
           where not unit_presence.online and excluded.changed_at >= unit_presence.changed_at""",
        (unit_id, at),
    )


EventRow = tuple[int, datetime, str, Mapping[str, object], datetime]  # unit, ts, kind, detail, received


def write_events(conn: psycopg.Connection, rows: Sequence[EventRow]) -> None:
    """Device events; one redelivered (same unit, time, kind and detail) is stored once."""
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """insert into unit_events (unit_id, ts, kind, detail, received_at) values (%s, %s, %s, %s, %s)
               on conflict do nothing""",
            [(u, ts, kind, Jsonb(dict(detail)), at) for u, ts, kind, detail, at in rows],
        )


def write_extras(conn: psycopg.Connection, extras: Sequence[tuple[int, datetime, int, dict[str, object]]]) -> None:
    """Values no telemetry column holds (unit_id, ts, seq, values), merged into the ``extra`` of rows
    already written (by ``write_readings``, in the same transaction): a resent reading adds nothing new."""
    if not extras:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """update telemetry set extra = coalesce(extra, '{}'::jsonb) || %s
               where unit_id = %s and ts = %s and seq = %s""",
            [(Jsonb(values), unit_id, ts, seq) for unit_id, ts, seq, values in extras],
        )


def write_rejects(conn: psycopg.Connection, rejects: Sequence[tuple[datetime, str, str | None, str, bytes]]) -> None:
    """Store refused messages (received_at, topic, serial, reason, raw payload) as dead letters. The
    payload is bytea, kept byte for byte; the text columns get what a unit sent with NUL and lone
    surrogates escaped (PostgreSQL text cannot hold them)."""
    if not rejects:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "insert into ingest_rejects (received_at, topic, serial, reason, payload) values (%s, %s, %s, %s, %s)",
            [_storable(*reject) for reject in rejects],
        )


def _storable(
    at: datetime, topic: str, serial: str | None, reason: str, payload: bytes
) -> tuple[datetime, str, str | None, str, bytes]:
    serial = None if serial is None else safe_text(serial, 200)
    return at, safe_text(topic, 500), serial, safe_text(reason), bytes(payload)


def ensure_partitions(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    row = conn.execute("select telemetry_ensure_partitions(%s, %s)", (start, end)).fetchone()
    return int(row[0]) if row else 0
