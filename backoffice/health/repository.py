"""All SQL of fleet health: the nightly derivation of ``unit_health_daily`` from the day's readings,
the window of rollups the rules read, alerts, collections classes and the outreach queue.

Over 400 lines because the nightly job's statements (derivation, the window's binary COPY, the alerts'
lifecycle with its hold and re-opening, collections) share their column lists and read best together;
split by those four when the next feature lands here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import psycopg
import psycopg.rows
from psycopg.types.json import Jsonb

from backoffice.health.derive import COLUMNS, Readings, Sites
from backoffice.health.rules import V_NOMINAL, WINDOW_DAYS, Thresholds, Window
from backoffice.health.schemas import AlertList
from backoffice.listing import Page, fetch_page

# A reading that arrives this long after its day ends still counts for its day (the job runs at 00:45).
GRACE = timedelta(minutes=40)
EPOCH_2000 = date(2000, 1, 1)
PG_EPOCH_S = 946_684_800.0  # 2000-01-01 in Unix seconds


def id_range(conn: psycopg.Connection) -> tuple[int, int]:
    """The lowest and highest unit id (the nightly job walks the fleet in slices of ids)."""
    lo, hi = conn.execute("select coalesce(min(id), 0), coalesce(max(id), -1) from units").fetchone() or (0, -1)
    return int(lo), int(hi)


def delete_day(conn: psycopg.Connection, day: date) -> None:
    conn.execute("delete from unit_health_daily where day = %s", (day,))


def day_sites(conn: psycopg.Connection, lo: int, hi: int) -> Sites:
    """Units ``lo``..``hi`` (ids) with their place, panel and chemistry: what a day's derivation needs."""
    u = _copy_columns(
        conn,
        """select u.id, coalesce(u.latitude, 0)::float8, coalesce(u.longitude, 0)::float8, p.panel_wp::float8,
                  (p.battery_chemistry = 'lead_acid')::int4
             from units u join products p on p.id = u.product_id
            where u.id between %(lo)s and %(hi)s order by u.id""",
        {"lo": lo, "hi": hi},
        {"id": "i8", "lat": "f8", "lon": "f8", "wp": "f8", "lead": "i4"},
    )
    lead = u["lead"] == 1
    return Sites(unit_id=u["id"], latitude=u["lat"], longitude=u["lon"], panel_wp=u["wp"], lead_acid=lead,
                 v_nom=np.where(lead, V_NOMINAL["lead_acid"], V_NOMINAL["lifepo4"]))  # fmt: skip


def day_readings(conn: psycopg.Connection, day: date, lo: int, hi: int) -> Readings:
    """The readings of ``day`` (UTC) of units ``lo``..``hi`` received by the run (GRACE after the day),
    as arrays: one binary COPY, NULL as NaN (``locked``: 1, else 0)."""
    nan = "'NaN'::float8"
    r = _copy_columns(
        conn,
        f"""select unit_id, ts, seq, coalesce(soc::float8, {nan}),
                   coalesce(load_wh::float8, {nan}), coalesce(pv_wh::float8, {nan}), coalesce(pv_w::float8, {nan}),
                   coalesce(batt_temp_c::float8, {nan}), coalesce(locked::int4, 0), coalesce(rssi::float8, {nan})
              from telemetry
             where ts >= %(day)s::date and ts < %(day)s::date + 1 and received_at < %(day)s::date + 1 + %(grace)s
               and unit_id between %(lo)s and %(hi)s""",
        {"day": day, "grace": GRACE, "lo": lo, "hi": hi},
        {"unit_id": "i8", "ts": "i8", "seq": "i8", "soc": "f8", "load_wh": "f8", "pv_wh": "f8", "pv_w": "f8",
         "batt_temp_c": "f8", "locked": "i4", "rssi": "f8"},
    )  # fmt: skip
    # A binary timestamptz is microseconds since 2000-01-01 UTC (cheaper to send than an epoch computed).
    r["ts"] = r["ts"] / 1e6 + PG_EPOCH_S
    return Readings(**r)


def write_day(conn: psycopg.Connection, day: date, unit_ids: np.ndarray, figures: dict[str, np.ndarray],
              soh: np.ndarray) -> int:  # fmt: skip
    """The derived day of these units into ``unit_health_daily`` by one binary COPY (NaN: NULL)."""
    n = len(unit_ids)
    if not n:
        return 0
    cols: list[tuple[str, np.ndarray]] = [("i8", unit_ids), ("i4", np.full(n, (day - EPOCH_2000).days)),
                                          ("i4", figures["received"])]  # fmt: skip
    for name in ("capacity_ah", "min_soc", "max_soc", "end_soc"):
        cols.append(("f4", figures[name]))
    for name in ("hours_hot", "hours_locked", "hours_cut", "hours_full"):
        cols.append(("f4", np.nan_to_num(figures[name])))
    cols += [("i2", figures["last_rssi"]), ("f4", figures["pv_clearness"]), ("f4", soh)]
    with (
        conn.cursor() as cur,
        cur.copy(
            """copy unit_health_daily (unit_id, day, received, capacity_ah, min_soc, max_soc, end_soc, hours_hot,
                                   hours_locked, hours_cut, hours_full, last_rssi, pv_clearness, soh)
           from stdin (format binary)"""
        ) as cp,
    ):
        cp.write(_binary_rows(cols))
    return n


def _binary_rows(cols: list[tuple[str, np.ndarray]]) -> bytes:
    """PostgreSQL's binary COPY of these columns (type code, values as float64 or ints; NaN: NULL),
    laid out by numpy: each row an int16 field count, then per field an int32 length (-1: NULL) and the
    value's big-endian bytes."""
    n = len(cols[0][1])
    nulls = [np.isnan(v) if v.dtype.kind == "f" else np.zeros(n, bool) for _, v in cols]
    sizes = [np.where(null, 0, int(code[1])) for (code, _), null in zip(cols, nulls, strict=True)]
    row_len = 2 + 4 * len(cols) + np.sum(sizes, axis=0)
    start = 19 + np.concatenate([[0], np.cumsum(row_len)[:-1]])
    buf = np.zeros(19 + int(row_len.sum()) + 2, np.uint8)
    buf[:19] = np.frombuffer(b"PGCOPY\n\xff\r\n\x00" + bytes(8), np.uint8)
    buf[-2:] = 0xFF

    def put(at: np.ndarray, values: np.ndarray, code: str) -> None:
        raw = values.astype(">" + code).view(np.uint8).reshape(len(values), np.dtype(code).itemsize)
        buf[at[:, None] + np.arange(raw.shape[1])] = raw

    put(start, np.full(n, len(cols)), "i2")
    at = start + 2
    for (code, values), null, size in zip(cols, nulls, sizes, strict=True):
        put(at, np.where(null, -1, int(code[1])), "i4")
        at = at + 4
        keep = ~null
        put(at[keep], np.asarray(values)[keep], code)
        at = at + size
    return buf.tobytes()


def _copy_columns(
    conn: psycopg.Connection, query: str, params: dict[str, Any], types: dict[str, str]
) -> dict[str, np.ndarray]:
    """The rows of ``query`` as numpy columns, read by one binary COPY and parsed in one ``frombuffer``
    (no Python object per row). Every column must be non-null and of the given fixed-width type, in
    order: ``f8`` (float8), ``i8`` (bigint) or ``i4`` (integer)."""
    with conn.cursor() as cur, cur.copy(f"copy ({query}) to stdout (format binary)", params) as cp:
        data = bytearray()  # grown in place: not the chunks and their join at once
        for chunk in cp:
            data += chunk
    # PostgreSQL's binary COPY: a 19-byte header (and a 4-byte extension length, here 0), then per row
    # an int16 field count and per field an int32 length and the value, big-endian; a trailer of -1.
    fields = [("n", ">i2")]
    for name, t in types.items():
        fields += [(f"{name}_len", ">i4"), (name, {"f8": ">f8", "i8": ">i8", "i4": ">i4"}[t])]
    dtype = np.dtype(fields)
    body = memoryview(data)[19:-2]
    rows = np.frombuffer(body, dtype, count=len(body) // dtype.itemsize)
    return {name: rows[name].astype(np.float64 if t == "f8" else np.int64) for name, t in types.items()}


def load_window(conn: psycopg.Connection, day: date, t: Thresholds, days: int = WINDOW_DAYS, *,
                lo: int | None = None, hi: int | None = None,
                today: tuple[np.ndarray, dict[str, np.ndarray]] | None = None) -> Window:  # fmt: skip
    """The window of daily figures ending on ``day`` of every installed unit (of ids ``lo``..``hi``: the
    nightly job's slice of the fleet): one binary COPY per table into arrays (at a million units the rows
    are 36 million: no Python object per row). ``today``: the day's derived figures (unit ids, columns
    of ``derive.COLUMNS``), given by the job that has just derived them, in place of reading them back."""
    first = day - timedelta(days=days - 1)
    span = {"lo": -(2**63) if lo is None else lo, "hi": 2**63 - 1 if hi is None else hi}
    in_span = "unit_id between %(lo)s and %(hi)s"
    u = _copy_columns(
        conn,
        """select u.id, p.panel_wp::float8, p.battery_ah::float8,
                  (p.battery_chemistry = 'lead_acid')::int4,
                  (floor(coalesce(u.latitude, 0) / 0.5)::int * 1000 + floor(coalesce(u.longitude, 0) / 0.5)::int)::int8
             from units u join products p on p.id = u.product_id
            where u.state = 'installed' and coalesce(u.installed_at::date, %(day)s) <= %(day)s
              and u.id between %(lo)s and %(hi)s order by u.id""",
        {"day": day, **span},
        {"id": "i8", "wp": "f8", "ah": "f8", "lead": "i4", "cell": "i8"},
    )
    ids = u["id"]
    n = len(ids)

    def place(uid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of units in the window: their positions, and which rows those are."""
        i = np.searchsorted(ids, uid)
        ok = (i < n) & (ids[np.minimum(i, max(n - 1, 0))] == uid) if n else np.zeros(len(uid), bool)
        return i[ok], ok

    def grid() -> np.ndarray:
        return np.full((n, days), np.nan)

    cols = {k: grid() for k in ("energy_in", "energy_out", "reports", "received", "capacity_ah", "min_soc",
                                "max_soc", "end_soc", "hours_hot", "hours_locked", "hours_cut",
                                "hours_full", "last_rssi", "pv_clearness")}  # fmt: skip
    nan = "'NaN'::float8"
    td = _copy_columns(
        conn,
        f"""select unit_id, (day - %(first)s::date)::int4, coalesce(energy_in_wh::float8, {nan}),
                   coalesce(energy_out_wh::float8, {nan}), coalesce(reports::float8, {nan})
              from telemetry_daily where day between %(first)s and %(day)s and {in_span}""",
        {"first": first, "day": day, **span},
        {"unit_id": "i8", "j": "i4", "energy_in": "f8", "energy_out": "f8", "reports": "f8"},
    )
    i, ok = place(td["unit_id"])
    for k in ("energy_in", "energy_out", "reports"):
        cols[k][i, td["j"][ok]] = td[k][ok]
    names = COLUMNS
    hd = _copy_columns(
        conn,
        f"""select unit_id, (day - %(first)s::date)::int4, {", ".join(f"coalesce({k}::float8, {nan})" for k in names)}
              from unit_health_daily where day between %(first)s and %(last)s and {in_span}""",
        {"first": first, "last": day if today is None else day - timedelta(days=1), **span},
        {"unit_id": "i8", "j": "i4", **dict.fromkeys(names, "f8")},
    )
    i, ok = place(hd["unit_id"])
    for k in names:
        cols[k][i, hd["j"][ok]] = hd[k][ok]
    if today is not None:
        i, ok = place(today[0])
        for k in names:
            cols[k][i, days - 1] = today[1][k][ok]
    cols["received"] = np.nan_to_num(cols["received"])
    past = np.full(n, np.nan)
    best = _copy_columns(
        conn,
        f"""select unit_id, max(soh)::float8 from unit_health_daily
            where day between %(a)s and %(b)s and soh is not null and {in_span} group by 1""",
        {"a": day - timedelta(days=t.soh_drop_days), "b": day - timedelta(days=1), **span},
        {"unit_id": "i8", "best": "f8"},
    )
    i, ok = place(best["unit_id"])
    past[i] = best["best"][ok]
    flags = np.zeros(n)
    ev = _copy_columns(
        conn,
        f"""select unit_id, count(*)::int8 from unit_events where kind = 'tamper' and ts >= %(day)s::date - 6
              and ts < %(day)s::date + 1 and {in_span} group by 1""",
        {"day": day, **span},
        {"unit_id": "i8", "k": "i8"},
    )
    i, ok = place(ev["unit_id"])
    flags[i] = ev["k"][ok]
    lead = u["lead"] == 1
    return Window(
        unit_id=ids, first_day=first, panel_wp=u["wp"], battery_ah=u["ah"],
        v_nom=np.where(lead, V_NOMINAL["lead_acid"], V_NOMINAL["lifepo4"]), cell=u["cell"],
        soh_past=past, tamper_events=flags, **cols,
    )  # fmt: skip


def save_soh(conn: psycopg.Connection, day: date, unit_ids: np.ndarray, soh: np.ndarray) -> None:
    keep = ~np.isnan(soh)
    if not keep.any():
        return
    conn.execute(
        """update unit_health_daily h set soh = s.soh
             from unnest(%s::bigint[], %s::real[]) as s (unit_id, soh)
            where h.unit_id = s.unit_id and h.day = %s""",
        (unit_ids[keep].tolist(), soh[keep].tolist(), day),
    )


@dataclass
class Firing:
    unit_id: int
    kind: str
    level: int
    evidence: dict[str, Any]


def reconcile(conn: psycopg.Connection, day: date, firing: list[Firing], clear_days: dict[str, int],
              reopen_days: int = 14) -> tuple[int, int, int]:  # fmt: skip
    """The alerts' lifecycle for ``day``: refresh the open alerts that still fire; close those whose
    condition has been clear for ``clear_days`` days (a day or two of reprieve does not close it: no
    flapping in the queue); re-open the alert a (unit, kind) had if it fires again within
    ``reopen_days`` of closing (the same row, the same ticket, a new episode in its evidence); open a
    new alert otherwise. Each alert's ``evidence`` holds the rule's latest figures and ``episodes``:
    the [first, last] days of each spell of firing, and ``reopened``: how often it came back after
    closing (``clear_days``: per kind). Returns (opened, resolved, reopened)."""
    conn.execute("create temp table if not exists health_firing (unit_id bigint, kind text, level smallint, "
                 "evidence jsonb) on commit drop")  # fmt: skip
    conn.execute("truncate health_firing")
    with conn.cursor() as cur, cur.copy("copy health_firing (unit_id, kind, level, evidence) from stdin") as cp:
        for f in firing:
            cp.write_row((f.unit_id, f.kind, f.level, Jsonb(f.evidence)))
    kinds = sorted(clear_days)
    p = {"day": day, "kinds": kinds, "clear": [clear_days[k] for k in kinds], "reopen": reopen_days}
    # Still firing: the latest figures, and today added to the last episode (or a new one after clear days).
    conn.execute(
        f"""update health_alerts a set last_seen_on = %(day)s, level = greatest(a.level, f.level),
                   evidence = f.evidence || jsonb_build_object(
                       'episodes', case when a.last_seen_on >= %(day)s::date - 1
                                        then jsonb_set({EPISODES}, array[(jsonb_array_length({EPISODES}) - 1)::text,
                                                                         '1'], to_jsonb(%(day)s::date))
                                        else {EPISODES} || jsonb_build_array(jsonb_build_array(%(day)s::date,
                                                                                                %(day)s::date)) end,
                       'reopened', coalesce((a.evidence ->> 'reopened')::int, 0))
              from health_firing f
             where a.resolved_on is null and f.unit_id = a.unit_id and f.kind = a.kind""",
        p,
    )
    resolved = conn.execute(
        """update health_alerts a set resolved_on = %(day)s
             from unnest(%(kinds)s::text[], %(clear)s::int[]) as c (kind, days)
            where a.resolved_on is null and c.kind = a.kind and a.last_seen_on <= %(day)s::date - c.days
              and not exists (select 1 from health_firing f where f.unit_id = a.unit_id and f.kind = a.kind)""",
        p,
    ).rowcount
    # Back within reopen_days of closing: the same alert again (its ticket, its acknowledgement kept).
    reopened = conn.execute(
        f"""update health_alerts a set resolved_on = null, last_seen_on = %(day)s, level = f.level,
                   evidence = f.evidence || jsonb_build_object(
                       'episodes', {EPISODES} || jsonb_build_array(jsonb_build_array(%(day)s::date, %(day)s::date)),
                       'reopened', coalesce((a.evidence ->> 'reopened')::int, 0) + 1)
              from health_firing f
             where a.id = (select max(b.id) from health_alerts b
                            where b.unit_id = f.unit_id and b.kind = f.kind
                              and b.resolved_on >= %(day)s::date - %(reopen)s)
               and not exists (select 1 from health_alerts o
                                where o.unit_id = f.unit_id and o.kind = f.kind and o.resolved_on is null)""",
        p,
    ).rowcount
    opened = conn.execute(
        """insert into health_alerts (unit_id, kind, level, opened_on, last_seen_on, evidence)
           select f.unit_id, f.kind, f.level, %(day)s, %(day)s,
                  f.evidence || jsonb_build_object('episodes', jsonb_build_array(jsonb_build_array(%(day)s::date,
                                                                                                   %(day)s::date)),
                                                   'reopened', 0)
             from health_firing f
            where not exists (select 1 from health_alerts a
                               where a.unit_id = f.unit_id and a.kind = f.kind and a.resolved_on is null)
           on conflict do nothing""",
        p,
    ).rowcount
    return opened, resolved, reopened


# An alert's spells of firing, [[first, last], ...] (alerts from before episodes were kept: one spell).
EPISODES = "coalesce(a.evidence -> 'episodes', jsonb_build_array(jsonb_build_array(a.opened_on, a.last_seen_on)))"


def alerts_needing_tickets(conn: psycopg.Connection, kinds: list[str]) -> list[tuple[int, int, str, dict[str, Any]]]:
    """Open alerts of these kinds that have no ticket yet: (id, unit_id, kind, evidence)."""
    return conn.execute(
        """select id, unit_id, kind, evidence from health_alerts
            where resolved_on is null and ticket_id is null and kind = any(%s) order by id for update""",
        (kinds,),
    ).fetchall()


def set_alert_ticket(conn: psycopg.Connection, alert_id: int, ticket_id: int) -> None:
    conn.execute("update health_alerts set ticket_id = %s where id = %s", (ticket_id, alert_id))


ALERT_COLS = """a.id, a.unit_id, u.serial, a.kind, a.level, a.opened_on, a.last_seen_on, a.resolved_on, a.evidence,
                a.acknowledged_at, a.acknowledged_by"""


def classify_collections(conn: psycopg.Connection, day: date, fault_kinds: list[str], t: Thresholds, zone: str) -> int:
    """Every unit out of credit on ``day``: its active contract's credit (contracts.credit_end, as its tokens
    gave it: the one definition, docs/credit_end.md) had ended when the day began in the company's time
    zone ``zone``. Out of credit since the day it ended; can't use (an open fault alert), using without
    paying (a tamper alert, or the battery charging day after day while locked: something draws
    unmetered), or not using (healthy and quiet). A unit locked with credit it paid for (a token not
    delivered yet) is not a collections case; nor is a contract that never had a token."""
    conn.execute("delete from unit_collections")
    return conn.execute(
        """
        with lapsed as (
            select c.unit_id, c.credit_end, (c.credit_end at time zone %(zone)s)::date as since
              from contracts c
             where c.state = 'active' and c.credit_end < (%(day)s::date::timestamp at time zone %(zone)s)
        ), facts as (
            select l.unit_id, l.since, l.credit_end,
                   (select array_agg(a.kind order by a.kind) from health_alerts a
                     where a.unit_id = l.unit_id and a.resolved_on is null and a.kind = any(%(faults)s)) as faults,
                   exists (select 1 from health_alerts a where a.unit_id = l.unit_id and a.resolved_on is null
                             and a.kind = 'tamper') as tamper,
                   (select coalesce(sum(d.energy_in_wh), 0) from telemetry_daily d
                     where d.unit_id = l.unit_id and d.day between %(day)s::date - 1 and %(day)s) as harvest_wh_2d
              from lapsed l
        )
        insert into unit_collections (unit_id, class, since, as_of, evidence)
        select f.unit_id,
               case when f.faults is not null then 'cant_use'
                    when f.tamper or f.harvest_wh_2d >= %(charging)s * p.battery_ah * 12 then 'using_without_paying'
                    else 'not_using' end,
               f.since, %(day)s,
               jsonb_build_object('faults', coalesce(f.faults, '{}'), 'tamper_alert', f.tamper,
                                  'harvest_wh_2d', round(f.harvest_wh_2d::numeric, 1),
                                  'credit_end', f.credit_end, 'days_out_of_credit', %(day)s::date - f.since)
          from facts f join units u on u.id = f.unit_id join products p on p.id = u.product_id
        """,
        {"day": day, "faults": fault_kinds, "charging": 0.3, "zone": zone},
    ).rowcount


def rebuild_outreach(conn: psycopg.Connection, day: date, playbook: list[tuple[str, int, str, str]],
                     coaching_kinds: list[str]) -> int:  # fmt: skip
    """The outreach queue: for each unit, its most pressing coaching alert or collections class (by the
    playbook's priority), with the suggested action and a script hint."""
    conn.execute("delete from health_outreach")
    reasons, priorities, actions, hints = (list(x) for x in zip(*playbook, strict=True))
    return conn.execute(
        """
        with book as (
            select * from unnest(%(reasons)s::text[], %(priorities)s::int[], %(actions)s::text[], %(hints)s::text[])
                   as b (reason, priority, action, hint)
        ), why as (
            select a.unit_id, case when a.kind = 'locked_too_long' then a.kind || '_' || a.level else a.kind end
                   as reason
              from health_alerts a
             -- Firing today: an alert held open through a short clear spell (say, a customer who has
             -- just paid) is not a call to make.
             where a.resolved_on is null and a.last_seen_on = %(day)s and a.kind = any(%(coaching)s)
            union all
            select unit_id, class from unit_collections
        )
        insert into health_outreach (unit_id, priority, reason, suggested_action, script_hint, as_of)
        select distinct on (w.unit_id) w.unit_id, b.priority, w.reason, b.action, b.hint, %(day)s
          from why w join book b on b.reason = w.reason
         order by w.unit_id, b.priority desc
        """,
        {"reasons": reasons, "priorities": priorities, "actions": actions, "hints": hints,
         "coaching": coaching_kinds, "day": day},
    ).rowcount  # fmt: skip


def open_alerts(conn: psycopg.Connection, *, kind: str | None = None, unit_id: int | None = None,
                limit: int = 500) -> list[dict[str, Any]]:  # fmt: skip
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            f"""select {ALERT_COLS} from health_alerts a join units u on u.id = a.unit_id
                 where a.resolved_on is null
                   and (%(kind)s::text is null or a.kind = %(kind)s)
                   and (%(unit)s::bigint is null or a.unit_id = %(unit)s)
                 order by a.opened_on desc, a.id desc limit %(limit)s""",
            {"kind": kind, "unit": unit_id, "limit": limit},
        ).fetchall()


# The open alerts list's sort keys (AlertList.SORTS) -> the output column each orders by.
ALERT_SORTS = {"opened": "opened_on", "last_seen": "last_seen_on", "level": "level", "kind": "kind",
               "serial": "serial"}  # fmt: skip


def open_alerts_page(conn: psycopg.Connection, query: AlertList) -> Page[dict[str, Any]]:
    """One page of the open alerts (of ``query.kind``), in its order, with the total."""
    select = f"""select {ALERT_COLS} from health_alerts a join units u on u.id = a.unit_id
                  where a.resolved_on is null and (%(kind)s::text is null or a.kind = %(kind)s)"""
    return fetch_page(conn, select, {"kind": query.kind}, ALERT_SORTS, query, dict, tiebreak="id")


def open_alert_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Open alerts by kind."""
    rows = conn.execute("select kind, count(*) from health_alerts where resolved_on is null group by kind")
    return {str(kind): int(n) for kind, n in rows}


def outreach_count(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from health_outreach").fetchone()
    return int(row[0]) if row else 0


def alert(conn: psycopg.Connection, alert_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            f"""select {ALERT_COLS} from health_alerts a join units u on u.id = a.unit_id where a.id = %s
                {"for update of a" if lock else ""}""",
            (alert_id,),
        ).fetchone()


def acknowledge(conn: psycopg.Connection, alert_id: int, who: str) -> None:
    conn.execute("update health_alerts set acknowledged_at = paygo_now(), acknowledged_by = %s where id = %s",
                 (who, alert_id))  # fmt: skip


def soh_series(conn: psycopg.Connection, unit_id: int, days: int = 180) -> list[tuple[date, float]]:
    return [
        (d, float(s))
        for d, s in conn.execute(
            """select day, soh from unit_health_daily where unit_id = %s and soh is not null
                 and day > (select max(day) from unit_health_daily where unit_id = %s) - %s order by day""",
            (unit_id, unit_id, days),
        )
    ]


def collections_of(conn: psycopg.Connection, unit_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("select * from unit_collections where unit_id = %s", (unit_id,)).fetchone()


def outreach(conn: psycopg.Connection, limit: int = 500) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            """select o.*, u.serial from health_outreach o join units u on u.id = o.unit_id
                order by o.priority desc, o.unit_id limit %s""",
            (limit,),
        ).fetchall()
