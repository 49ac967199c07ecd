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

from backoffice.health.rules import V_NOMINAL, WINDOW_DAYS, Thresholds, Window
from backoffice.health.schemas import AlertList
from backoffice.listing import Page, fetch_page

# The charge at which the low-voltage disconnect cuts the load, by chemistry (lead-acid is cut at
# about 20-25 % under load, LiFePO4 at about 5 %); a reading at or below it is a cut-off hour.
CUT_SOC = {"lead_acid": 0.30, "lifepo4": 0.10}
# A reading that arrives this long after its day ends still counts for its day (the job runs at 00:45).
GRACE = timedelta(minutes=40)
# A night's estimate is kept when the charge fell by at least this much (a big battery under a light
# load falls little; the reported charge and the metered load are exact enough for 8 %).
MIN_NIGHT_DROP = 0.08
# Hours are measured from the readings' timestamps, not counted as readings × an assumed interval: each
# reading stands for the time since the one before it, at most the unit's own report interval (the
# median gap between its readings that day), so a 5-, 20- or 60-minute unit, or an OpenPAYGO Metrics
# unit sending hourly batches, gets the same hours, and a silence longer than a report is not
# counted as the state before it. A night step for the capacity estimate is one at most this many
# report intervals long.
NIGHT_GAP_INTERVALS = 1.5
# PV clearness: readings with the battery below this charge (the controller harvests all the panel gives)
# and the sun at least 17.5° up (cos zenith ≥ 0.3: the clear-sky model is good there, dawn's is not).
CHARGING_SOC = 0.97
MIN_SUN_CZ = 0.3


def derive_day(conn: psycopg.Connection, day: date, t: Thresholds) -> int:
    """``unit_health_daily`` of ``day`` from its readings received by the run (replaces the day's rows).

    The capacity estimate is a coulomb count over the night: between two consecutive readings with
    no PV, the charge delivered to the load (Wh / nominal V) over the fall of the state of charge the
    unit reports; it is kept when the night's discharge is at least MIN_NIGHT_DROP of the battery."""
    conn.execute("delete from unit_health_daily where day = %s", (day,))
    cur = conn.execute(
        """
        with r as (
            select t.unit_id, t.ts, t.soc, t.load_wh, t.pv_wh, t.pv_w, t.batt_temp_c, t.locked, t.rssi,
                   lag(t.soc) over w as prev_soc, extract(epoch from t.ts - lag(t.ts) over w) as gap_s, sun.cz
              from telemetry t
              join units su on su.id = t.unit_id
              -- The sun's height at the unit's place and the reading's time (NOAA's low-precision
              -- formulas): cz, the cosine of the zenith angle.
              cross join lateral (
                  select extract(epoch from (t.ts at time zone 'UTC')::time) / 3600.0 as hr,
                         2 * pi() / 365 * (extract(doy from t.ts at time zone 'UTC') - 1
                                           + (extract(epoch from (t.ts at time zone 'UTC')::time) / 3600.0 - 12) / 24)
                             as g
              ) tg
              cross join lateral (
                  select 0.006918 - 0.399912 * cos(tg.g) + 0.070257 * sin(tg.g) - 0.006758 * cos(2 * tg.g)
                         + 0.000907 * sin(2 * tg.g) - 0.002697 * cos(3 * tg.g) + 0.00148 * sin(3 * tg.g) as decl,
                         229.18 * (0.000075 + 0.001868 * cos(tg.g) - 0.032077 * sin(tg.g)
                                   - 0.014615 * cos(2 * tg.g) - 0.040849 * sin(2 * tg.g)) as eqtime
              ) sd
              cross join lateral (
                  select sin(radians(coalesce(su.latitude, 0))) * sin(sd.decl)
                         + cos(radians(coalesce(su.latitude, 0))) * cos(sd.decl)
                           * cos(radians((tg.hr * 60 + sd.eqtime + 4 * coalesce(su.longitude, 0)) / 4 - 180)) as cz
              ) sun
             where t.ts >= %(day)s::date and t.ts < %(day)s::date + 1
               and t.received_at < %(day)s::date + 1 + %(grace)s
            window w as (partition by t.unit_id order by t.ts, t.seq)
        ), iv as (
            -- Each unit's report interval that day: the median gap between its readings (a lone
            -- reading: 20 minutes, the firmware's default).
            select unit_id, coalesce(percentile_cont(0.5) within group (order by gap_s), 1200) as iv_s
              from r where gap_s > 0 group by unit_id
        ), rw as (
            -- What each reading stands for, in hours: the time since the reading before it, capped at
            -- the unit's interval (a gap is not the state before it); the day's first reading, one interval.
            select r.*, coalesce(iv.iv_s, 1200) as iv_s,
                   least(coalesce(nullif(r.gap_s, 0), coalesce(iv.iv_s, 1200)), coalesce(iv.iv_s, 1200)) / 3600.0
                       as h
              from r left join iv using (unit_id)
        ), d as (
            select r.unit_id, count(*) as received,
                   sum(r.load_wh) filter (where night) as night_wh,
                   sum(r.prev_soc - r.soc) filter (where night) as night_drop,
                   min(r.soc) as min_soc, max(r.soc) as max_soc,
                   coalesce(sum(r.h) filter (where r.batt_temp_c > %(hot)s), 0) as hours_hot,
                   coalesce(sum(r.h) filter (where r.locked), 0) as hours_locked,
                   coalesce(sum(r.h) filter (where r.soc <= case p.battery_chemistry when 'lead_acid'
                                                           then %(cut_la)s else %(cut_lfp)s end), 0) as hours_cut,
                   coalesce(sum(r.h) filter (where r.soc >= 0.99), 0) as hours_full,
                   (array_agg(r.rssi order by r.ts desc))[1] as last_rssi,
                   (array_agg(r.soc order by r.ts desc))[1] as end_soc,
                   -- PV power per Wp while the battery still takes charge (the controller harvests all
                   -- the panel gives), over the clear-sky irradiance (Haurwitz) / 1000 W/m²: the day's best.
                   max(r.pv_w / p.panel_wp / (1.098 * r.cz * exp(-0.057 / r.cz)))
                       filter (where r.soc < %(charging)s and r.cz >= %(min_cz)s) as pv_clearness,
                   case p.battery_chemistry when 'lead_acid' then %(v_la)s else %(v_lfp)s end as v_nom
              from (select *, pv_wh = 0 and prev_soc > soc and soc > 0.02 and prev_soc < 0.99
                              and gap_s <= %(night_gap)s * iv_s as night from rw) r
              join units u on u.id = r.unit_id
              join products p on p.id = u.product_id
             group by r.unit_id, p.battery_chemistry
        )
        insert into unit_health_daily (unit_id, day, received, capacity_ah, min_soc, max_soc, end_soc,
                                       hours_hot, hours_locked, hours_cut, hours_full, last_rssi,
                                       pv_clearness)
        select unit_id, %(day)s, received,
               case when night_drop >= %(min_drop)s then night_wh / v_nom / night_drop end,
               min_soc, max_soc, end_soc, hours_hot, hours_locked, hours_cut, hours_full, last_rssi,
               pv_clearness
          from d
        """,
        {"day": day, "grace": GRACE, "min_drop": MIN_NIGHT_DROP, "charging": CHARGING_SOC, "min_cz": MIN_SUN_CZ,
         "hot": t.hot_c, "night_gap": NIGHT_GAP_INTERVALS,
         "cut_la": CUT_SOC["lead_acid"], "cut_lfp": CUT_SOC["lifepo4"], "v_la": V_NOMINAL["lead_acid"],
         "v_lfp": V_NOMINAL["lifepo4"]},
    )  # fmt: skip
    return cur.rowcount


def _copy_columns(
    conn: psycopg.Connection, query: str, params: dict[str, Any], types: dict[str, str]
) -> dict[str, np.ndarray]:
    """The rows of ``query`` as numpy columns, read by one binary COPY and parsed in one ``frombuffer``
    (no Python object per row). Every column must be non-null and of the given fixed-width type, in
    order: ``f8`` (float8), ``i8`` (bigint) or ``i4`` (integer)."""
    with conn.cursor() as cur, cur.copy(f"copy ({query}) to stdout (format binary)", params) as cp:
        data = b"".join(bytes(chunk) for chunk in cp)
    # PostgreSQL's binary COPY: a 19-byte header (and a 4-byte extension length, here 0), then per row
    # an int16 field count and per field an int32 length and the value, big-endian; a trailer of -1.
    fields = [("n", ">i2")]
    for name, t in types.items():
        fields += [(f"{name}_len", ">i4"), (name, {"f8": ">f8", "i8": ">i8", "i4": ">i4"}[t])]
    dtype = np.dtype(fields)
    body = data[19:-2]
    rows = np.frombuffer(body, dtype, count=len(body) // dtype.itemsize)
    return {name: rows[name].astype(np.float64 if t == "f8" else np.int64) for name, t in types.items()}


def load_window(conn: psycopg.Connection, day: date, t: Thresholds, days: int = WINDOW_DAYS) -> Window:
    """The window of daily figures ending on ``day`` of every installed unit: one binary COPY per table
    into arrays (at a million units the rows are 36 million: no Python object per row)."""
    first = day - timedelta(days=days - 1)
    u = _copy_columns(
        conn,
        """select u.id, p.panel_wp::float8, p.battery_ah::float8,
                  (p.battery_chemistry = 'lead_acid')::int4,
                  (floor(coalesce(u.latitude, 0) / 0.5)::int * 1000 + floor(coalesce(u.longitude, 0) / 0.5)::int)::int8
             from units u join products p on p.id = u.product_id
            where u.state = 'installed' and coalesce(u.installed_at::date, %(day)s) <= %(day)s order by u.id""",
        {"day": day},
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
              from telemetry_daily where day between %(first)s and %(day)s""",
        {"first": first, "day": day},
        {"unit_id": "i8", "j": "i4", "energy_in": "f8", "energy_out": "f8", "reports": "f8"},
    )
    i, ok = place(td["unit_id"])
    for k in ("energy_in", "energy_out", "reports"):
        cols[k][i, td["j"][ok]] = td[k][ok]
    names = ("received", "capacity_ah", "min_soc", "max_soc", "end_soc", "hours_hot", "hours_locked", "hours_cut",
             "hours_full", "last_rssi", "pv_clearness")  # fmt: skip
    hd = _copy_columns(
        conn,
        f"""select unit_id, (day - %(first)s::date)::int4, {", ".join(f"coalesce({k}::float8, {nan})" for k in names)}
              from unit_health_daily where day between %(first)s and %(day)s""",
        {"first": first, "day": day},
        {"unit_id": "i8", "j": "i4", **dict.fromkeys(names, "f8")},
    )
    i, ok = place(hd["unit_id"])
    for k in names:
        cols[k][i, hd["j"][ok]] = hd[k][ok]
    cols["received"] = np.nan_to_num(cols["received"])
    past = np.full(n, np.nan)
    best = _copy_columns(
        conn,
        """select unit_id, max(soh)::float8 from unit_health_daily
            where day between %(a)s and %(b)s and soh is not null group by 1""",
        {"a": day - timedelta(days=t.soh_drop_days), "b": day - timedelta(days=1)},
        {"unit_id": "i8", "best": "f8"},
    )
    i, ok = place(best["unit_id"])
    past[i] = best["best"][ok]
    flags = np.zeros(n)
    ev = _copy_columns(
        conn,
        """select unit_id, count(*)::int8 from unit_events where kind = 'tamper' and ts >= %(day)s::date - 6
              and ts < %(day)s::date + 1 group by 1""",
        {"day": day},
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
