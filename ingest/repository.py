"""SQL of the OpenPAYGO Metrics path and of reading telemetry back (the rows themselves are written by
ingest/writer.py and ingest/bulk.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class MetricsUnit:
    """A unit as the Metrics path checks a request of it."""

    id: int
    key_enc: bytes | None  # its OpenPAYGO key, encrypted
    created_at: datetime
    simple_auth: bool  # its product accepts simple auth ('sa')
    last_request_count: int | None  # the highest accepted so far, each on its own
    last_request_timestamp: int | None
    product_id: int = 0
    base_url: str | None = None  # the server an administrator moved it to (sent in every answer)
    extra_data: dict[str, Any] | None = None  # sent in every answer while set
    set_time: bool = False  # its product's devices expect one SET_TIME token (products.metrics_set_time)
    auth_method: str | None = None  # the method it signs with, pinned by its first signed request ('jwt': none yet)


def lock_unit(conn: psycopg.Connection, serial: str) -> MetricsUnit | None:
    """The unit of ``serial``, row-locked so that two requests of one unit are checked for replay one
    after the other."""
    with conn.cursor(row_factory=class_row(MetricsUnit)) as cur:
        return cur.execute(
            """select u.id, u.openpaygo_key_enc as key_enc, u.created_at, p.metrics_simple_auth as simple_auth,
                      m.last_request_count, m.last_request_timestamp, u.product_id, m.base_url, m.extra_data,
                      p.metrics_set_time as set_time, m.last_auth_method as auth_method
               from units u join products p on p.id = u.product_id
                    left join metrics_state m on m.unit_id = u.id
               where u.serial = %s
               for no key update of u""",
            (serial,),
        ).fetchone()


def save_request(
    conn: psycopg.Connection,
    unit_id: int,
    count: int | None,
    timestamp: int | None,
    method: str | None = None,
    data_format: int | None = None,
    base_url_sent: bool = False,
) -> None:
    """Record an accepted request's count and timestamp; one it did not carry keeps its last value
    (so that a request carrying only the other cannot reset it). Also how it came (auth method, or
    'jwt'; data format) and whether its answer carried the unit's new base_url. The first signed
    method is kept for good (the unit's pinned method, ``last_auth_method``): a JWT request (testing)
    does not overwrite it, and a request of another method is refused before it gets here."""
    conn.execute(
        """insert into metrics_state (unit_id, last_request_count, last_request_timestamp, last_auth_method,
                                      last_data_format, last_request_at)
           values (%s, %s, %s, %s, %s, paygo_now())
           on conflict (unit_id) do update set
               last_request_count = coalesce(excluded.last_request_count, metrics_state.last_request_count),
               last_request_timestamp = coalesce(excluded.last_request_timestamp,
                                                 metrics_state.last_request_timestamp),
               last_auth_method = case when excluded.last_auth_method = 'jwt'
                                       then coalesce(metrics_state.last_auth_method, 'jwt')
                                       else excluded.last_auth_method end,
               last_data_format = coalesce(excluded.last_data_format, metrics_state.last_data_format),
               last_request_at = paygo_now(),
               base_url_sent_at = case when %s then paygo_now() else metrics_state.base_url_sent_at end,
               updated_at = paygo_now()""",
        (unit_id, count, timestamp, method, data_format, base_url_sent),
    )


@dataclass(frozen=True)
class FormatRow:
    id: int
    product_id: int | None
    data_order: list[str]
    historical_data_order: list[str]
    historical_data_interval: int | None
    variables: dict[str, Any]


def data_format(conn: psycopg.Connection, format_id: int) -> FormatRow | None:
    with conn.cursor(row_factory=class_row(FormatRow)) as cur:
        return cur.execute(
            """select id, product_id, data_order, historical_data_order, historical_data_interval, variables
               from metrics_data_formats where id = %s""",
            (format_id,),
        ).fetchone()


def insert_data_format(
    conn: psycopg.Connection, fmt: dict[str, Any], product_id: int | None, registered_by: str
) -> int:
    row = conn.execute(
        """insert into metrics_data_formats (product_id, data_order, historical_data_order, historical_data_interval,
                                             variables, registered_by)
           values (%s, %s, %s, %s, %s, %s) returning id""",
        (product_id, Jsonb(fmt.get("data_order", [])), Jsonb(fmt.get("historical_data_order", [])),
         fmt.get("historical_data_interval"), Jsonb(fmt.get("variables", {})), registered_by),
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


def product_exists(conn: psycopg.Connection, product_id: int) -> bool:
    return conn.execute("select 1 from products where id = %s", (product_id,)).fetchone() is not None


MAX_TOKENS_PER_ANSWER = 32  # a device accepts a token at most 64 counts ahead (about 32 of one type)


def tokens_after(conn: psycopg.Connection, unit_id: int, token_count: int) -> list[tuple[str, str]]:
    """The unit's tokens (and their types) above the token count it reports, by increasing count (the
    oldest it lacks first), whatever their delivery's state: the device says itself what it has."""
    rows = conn.execute(
        "select token, token_type from tokens where unit_id = %s and count > %s order by count limit %s",
        (unit_id, token_count, MAX_TOKENS_PER_ANSWER),
    ).fetchall()
    return [(str(token), str(kind)) for token, kind in rows]


def ack_tokens_upto(conn: psycopg.Connection, unit_id: int, token_count: int) -> int:
    """The unit reports this token count: its MQTT deliveries of tokens up to it are done (acked), so
    that the dispatcher stops sending them."""
    cur = conn.execute(
        """update outbox o set state = 'acked', acked_at = paygo_now() from tokens t
           where o.token_id = t.id and t.unit_id = %s and t.count <= %s and o.channel = 'mqtt'
             and o.state in ('pending', 'sent')""",
        (unit_id, token_count),
    )
    return cur.rowcount


def active_until(conn: psycopg.Connection, unit_id: int) -> datetime | None:
    """When the credit of the unit's live contract runs out: its credit end as its tokens gave it
    (contracts.credit_end, the one definition: docs/credit_end.md); None if no live contract or no token
    yet; far ahead (2106, the largest 32-bit timestamp) once paid off (unlocked for good)."""
    row = conn.execute(
        """select case when c.state = 'paid_off' or c.credit_end = 'infinity'
                       then timestamptz '2106-02-07 06:28:15+00' else c.credit_end end
           from contracts c where c.unit_id = %s and c.state in ('active', 'paid_off')
           order by c.id desc limit 1""",
        (unit_id,),
    ).fetchone()
    return row[0] if row else None


def unit_id_by_serial(conn: psycopg.Connection, serial: str) -> int | None:
    row = conn.execute("select id from units where serial = %s", (serial,)).fetchone()
    return int(row[0]) if row else None


def device_data(
    conn: psycopg.Connection, unit_id: int, start: datetime, end: datetime, limit: int
) -> list[dict[str, Any]]:
    """The unit's readings in [start, end), oldest first: each column that has a value, and ``extra``."""
    with conn.cursor() as cur:
        cur.execute(
            """select ts, batt_v, batt_a, soc, batt_temp_c, pv_v, pv_w, pv_wh, load_wh, credit_s, locked, rssi, fw,
                      extra
               from telemetry where unit_id = %s and ts >= %s and ts < %s order by ts, seq limit %s""",
            (unit_id, start, end, limit),
        )
        names = [d.name for d in cur.description or []]
        rows = cur.fetchall()
    out = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        extra = values.pop("extra") or {}
        step = {"timestamp": int(values.pop("ts").timestamp())}
        step.update({k: v for k, v in values.items() if v is not None})
        step.update(extra)
        out.append(step)
    return out


def count_readings(conn: psycopg.Connection, unit_ids: list[int], start: datetime, end: datetime) -> int:
    """Readings of these units in [start, end)."""
    row = conn.execute(
        "select count(*) from telemetry where unit_id = any(%s) and ts >= %s and ts < %s", (unit_ids, start, end)
    ).fetchone()
    return int(row[0]) if row else 0


# ---- ingest slots (ingest/slots.py): leases on the fixed set of broker sessions


def ensure_slots(conn: psycopg.Connection, slots: int) -> None:
    """Slots 0..slots-1 exist (raising the setting adds slots; lowering it removes none)."""
    conn.execute(
        "insert into ingest_slots (slot) select generate_series(0, %s - 1) on conflict (slot) do nothing", (slots,)
    )


def heartbeat(conn: psycopg.Connection, worker_id: str, lease_s: float) -> tuple[int, int]:
    """Mark the worker alive for another lease; (live workers, slots in all)."""
    conn.execute(
        """insert into ingest_workers (worker_id, seen_until) values (%s, paygo_now() + make_interval(secs => %s))
           on conflict (worker_id) do update set seen_until = excluded.seen_until""",
        (worker_id, lease_s),
    )
    row = conn.execute(
        """select (select count(*) from ingest_workers where seen_until > paygo_now()),
                  (select count(*) from ingest_slots)"""
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def renew_slots(conn: psycopg.Connection, worker_id: str, lease_s: float) -> list[int]:
    """Extend the leases this worker still holds; the slots it holds (a lapsed lease nobody took is
    still its own)."""
    rows = conn.execute(
        """update ingest_slots set lease_until = paygo_now() + make_interval(secs => %s)
           where holder = %s returning slot""",
        (lease_s, worker_id),
    ).fetchall()
    return sorted(r[0] for r in rows)


def claim_slots(conn: psycopg.Connection, worker_id: str, wanted: int, lease_s: float) -> list[int]:
    """Take up to ``wanted`` slots that nobody holds or whose lease lapsed; the slots taken."""
    if wanted <= 0:
        return []
    rows = conn.execute(
        """update ingest_slots s set holder = %(me)s, claimed_at = paygo_now(),
                  lease_until = paygo_now() + make_interval(secs => %(lease)s)
           where s.slot in (select slot from ingest_slots
                            where holder is null or lease_until < paygo_now()
                            order by lease_until, slot limit %(n)s for update skip locked)
           returning s.slot""",
        {"me": worker_id, "lease": lease_s, "n": wanted},
    ).fetchall()
    return sorted(r[0] for r in rows)


def release_slots(conn: psycopg.Connection, worker_id: str, slots: list[int]) -> None:
    """Give slots back (only those this worker still holds) for another worker to claim at once."""
    conn.execute(
        """update ingest_slots set holder = null, lease_until = '-infinity'
           where holder = %s and slot = any(%s)""",
        (worker_id, slots),
    )


def leave(conn: psycopg.Connection, worker_id: str) -> None:
    """The worker is stopping: it no longer counts among the live ones."""
    conn.execute("delete from ingest_workers where worker_id = %s", (worker_id,))
    conn.execute("delete from ingest_workers where seen_until < paygo_now() - interval '1 day'")


@dataclass(frozen=True)
class SlotLease:
    slot: int
    holder: str | None
    lapsed: bool


def slot_leases(conn: psycopg.Connection) -> list[SlotLease]:
    """Every slot, its holder and whether its lease has lapsed (for operators and tests)."""
    with conn.cursor(row_factory=class_row(SlotLease)) as cur:
        return cur.execute(
            "select slot, holder, lease_until < paygo_now() as lapsed from ingest_slots order by slot"
        ).fetchall()
