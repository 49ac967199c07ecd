"""The fleet-health nightly job end to end (issue 25, item 4): today's job against the job before it,
on the same generated fleet in the same run, each in a process of its own for its peak memory.

    .venv/bin/python bench/health_nightly_bench.py [--units 1000000] [--no-baseline]

A fresh database on the local stack with N installed units of three kits spread over ~400
neighbourhoods, the evaluated day's raw readings of every unit (every 20 minutes, every field a unit
sends: charge, battery volts/amps/temperature, PV volts/watts/Wh, load Wh, credit, lock, signal,
firmware; written by binary COPY through ``ingest.bulk`` with their daily rollups; 2 % of the units
silent, 5 % locked and 1 % hot as in their history, 3 % with a covered panel) and 35 days of ``telemetry_daily`` and
``unit_health_daily`` before it (numpy, binary COPY). Then ``health.evaluate_daily``'s work for that day:

- **ours**: ``service.run_day`` — streamed in slices of 20,000 units: the day derived in numpy from a
  binary COPY of its readings (``health.derive``), the neighbours' references from the fleet's last
  week, each slice's 36-day window by binary COPY, the rules, the day's rows written by binary COPY;
  then the alerts' lifecycle, tickets, collections and the outreach queue;
- **baseline**: the job as it was before (``baseline_run_day`` below, verbatim): the day derived by one
  SQL statement computing the sun for every reading, the whole fleet's window in one piece, the rules,
  the state of health written by an UPDATE, then the same lifecycle and queues.

Each runs in a child process (``bench/peak_memory.py``: its own peak RSS) inside a transaction that is
rolled back, so both see the same database; the derived rows and the firing alerts of both are
compared (derived figures to 1e-4: the SQL summed in float4, numpy in float64, both stored as real).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from backoffice import clock
from backoffice.config import load_settings
from backoffice.db import connect
from backoffice.health import derive, repository, rules, service
from backoffice.health.rules import V_NOMINAL
from devtools.postgres import drop_database, fresh_database, owner_url
from ingest import bulk
from ingest.writer import ensure_partitions

DB = "paygo_bench_health_nightly"
DAY = date(2026, 6, 1)
HISTORY_DAYS = 35
EPOCH_2000 = date(2000, 1, 1)
KITS = [("W10", 10, 6, "lead_acid"), ("W50", 50, 20, "lifepo4"), ("W100", 100, 60, "lifepo4")]


def populate(conn: psycopg.Connection, units: int, seed: int = 7) -> None:
    for code, wp, ah, chem in KITS:
        conn.execute(
            """insert into products (code, name, business_model, currency, price_per_day, panel_wp, battery_ah,
                                     battery_chemistry) values (%s, %s, 'flexible', 'KES', 3500, %s, %s, %s)""",
            (code, code, wp, ah, chem),
        )
    conn.execute(
        """insert into units (serial, product_id, state, latitude, longitude, installed_at)
           select 'NB' || lpad(g::text, 8, '0'),
                  (select id from products where code = (array['W10', 'W50', 'W100'])[1 + g %% 3]),
                  'installed', -5 + random() * 10, 30 + random() * 10, %s::date - 400
             from generate_series(1, %s) g""",
        (DAY, units),
    )
    u = conn.execute(
        """select u.id, u.latitude, u.longitude, p.panel_wp, p.battery_ah, p.battery_chemistry = 'lead_acid'
             from units u join products p on p.id = u.product_id order by u.id"""
    ).fetchall()
    ids = np.array([r[0] for r in u], np.int64)
    lat, lon = np.array([r[1] for r in u]), np.array([r[2] for r in u])
    wp, ah = np.array([float(r[3]) for r in u]), np.array([float(r[4]) for r in u])
    lead = np.array([r[5] for r in u])
    rng = np.random.default_rng(seed)
    history(conn, ids, wp, ah, rng)
    conn.commit()
    # The day's raw readings, by slices of units (numpy, binary COPY with their daily rollups).
    ensure_partitions(conn, datetime.combine(DAY - timedelta(days=40), datetime.min.time(), UTC),
                      datetime.combine(DAY + timedelta(days=2), datetime.min.time(), UTC))  # fmt: skip
    t0 = datetime.combine(DAY, datetime.min.time(), UTC).timestamp()
    per = 72
    for a in range(0, len(ids), 20_000):
        s = slice(a, a + 20_000)
        keep = rng.random(len(ids[s])) >= 0.02  # 2 % silent
        uid, la, lo, p_wp, p_ah, p_lead = (
            ids[s][keep],
            lat[s][keep],
            lon[s][keep],
            wp[s][keep],
            ah[s][keep],
            lead[s][keep],
        )
        m = len(uid)
        phase = rng.random(m)
        ts = t0 + (np.arange(per)[None, :] + phase[:, None]) * 1200.0
        cz = derive.sun_cz(ts.ravel(), np.repeat(la, per), np.repeat(lo, per)).reshape(m, per)
        with np.errstate(divide="ignore", invalid="ignore"):
            ghi = np.where(cz > 0.01, 1098 * cz * np.exp(-0.057 / np.maximum(cz, 0.01)), 0.0)
        clear = np.where(rng.random(m) < 0.03, 0.2, 0.55 + 0.4 * rng.random(m))  # 3 % covered
        pv_w = p_wp[:, None] * clear[:, None] * ghi / 1000
        hr_local = ((ts - t0) / 3600 + lo[:, None] / 15) % 24
        locked = uid % 20 == 0
        evening = (hr_local >= 18) & (hr_local < 23)
        load_w = np.where(evening, (0.08 + 0.1 * rng.random(m))[:, None] * p_wp[:, None], 1.0)
        load_w = np.where(locked[:, None], 0.0, load_w)
        wh = p_ah * np.where(p_lead, V_NOMINAL["lead_acid"], V_NOMINAL["lifepo4"])
        # The battery, step by step: a full battery makes the controller harvest only what the load takes.
        soc = np.empty((m, per))
        pv_wh = np.empty((m, per))
        s_k = 0.4 + 0.4 * rng.random(m)
        for k in range(per):
            load_k = load_w[:, k] / 3
            pv_wh[:, k] = np.minimum(pv_w[:, k] / 3, np.maximum(0.0, (1 - s_k) * wh + load_k))
            s_k = np.clip(s_k + (pv_wh[:, k] - load_k) / wh, 0.02, 1.0)
            soc[:, k] = s_k
        hot = uid % 100 == 1
        temp = 26 + 8 * ghi / 1000 + np.where(hot, 15.0, 0.0)[:, None] + rng.normal(0, 0.5, (m, per))
        late = np.where(rng.random((m, per)) < 0.005, 3 * 3600.0, 2.0)  # a few wait out a GSM outage
        n = m * per
        cols = {
            "unit_id": np.repeat(uid, per), "ts": ts.ravel(), "seq": np.tile(np.arange(per) + 1_000_000, m),
            "received_at": (ts + late).ravel(), "batt_v": (11.6 + 2.0 * soc).ravel(),
            "batt_a": ((pv_w - load_w) / 12).ravel(), "soc": soc.ravel(), "batt_temp_c": temp.ravel(),
            "pv_v": np.where(pv_w > 0, 17.5, 0.0).ravel(), "pv_w": pv_w.ravel(), "pv_wh": pv_wh.ravel(),
            "load_wh": (load_w / 3).ravel(), "credit_s": np.where(locked, 0, 5 * 86400).repeat(per),
            "locked": locked.repeat(per), "rssi": (-60 - rng.integers(0, 50, m)).repeat(per).astype(np.int16),
        }  # fmt: skip
        assert all(len(c) == n for c in cols.values())
        bulk.write_columns(conn, cols, "bench-1.0")
        conn.commit()
    conn.execute("analyze")
    conn.commit()


def history(
    conn: psycopg.Connection, ids: np.ndarray, wp: np.ndarray, ah: np.ndarray, rng: np.random.Generator
) -> None:
    """The 35 days before the evaluated day: the rollups the ingest writer kept and the job's own derived
    rows, of a steady fleet (each unit its own use, the harvest what the load took: no bypass, a full
    battery most days); units with id % 20 = 0 out of credit (locked) and id % 100 = 1 running hot, as
    on the evaluated day. Numpy, by binary COPY, 50,000 units at a time."""
    for a in range(0, len(ids), 50_000):
        uid, p_wp, p_ah = ids[a : a + 50_000], wp[a : a + 50_000], ah[a : a + 50_000]
        m, d = len(uid), HISTORY_DAYS
        n = m * d
        unit = np.repeat(uid, d)
        day = np.tile((DAY - EPOCH_2000).days - np.arange(1, d + 1), m).astype(np.int32)
        locked = np.repeat(uid % 20 == 0, d)
        use = np.repeat(p_wp * (0.5 + 0.3 * ((uid * 7919) % 100) / 100.0), d) * (0.9 + 0.2 * rng.random(n)) + 10
        out = np.where(locked, 2.0, use)
        daily = bulk.binary_copy(
            [(">i8", unit), (">i4", day), (">f8", out / 0.95 * (1 + 0.03 * rng.random(n))), (">f8", out),
             (">f4", np.full(n, 11.8)), (">f4", np.full(n, 13.4)), (">f4", np.zeros(n)), (">f4", np.full(n, 35.0)),
             (">i4", np.full(n, 72))],
            n,
        )  # fmt: skip
        health = bulk.binary_copy(
            [(">i8", unit), (">i4", day), (">i4", np.full(n, 72)),
             (">f4", np.repeat(p_ah, d) * (0.97 + 0.04 * rng.random(n))), (">f4", np.full(n, 0.99)),
             (">f4", 0.4 + 0.2 * rng.random(n)), (">f4", 0.97 + 0.03 * rng.random(n)),
             (">f4", 0.75 + 0.05 * rng.random(n)), (">f4", np.where(np.repeat(uid % 100 == 1, d), 3.0, 0.0)),
             (">f4", np.where(locked, 24.0, 0.0)), (">f4", np.zeros(n)), (">f4", 8 * rng.random(n)),
             (">i2", -60 - rng.integers(0, 50, n)), (">f4", 0.55 + 0.4 * rng.random(n))],
            n,
        )  # fmt: skip
        with conn.cursor() as cur:
            with cur.copy(f"copy telemetry_daily ({', '.join(bulk.DAILY_COLS)}) from stdin (format binary)") as cp:
                cp.write(daily)
            with cur.copy(
                """copy unit_health_daily (unit_id, day, received, capacity_ah, soh, min_soc, max_soc, end_soc,
                                           hours_hot, hours_locked, hours_cut, hours_full, last_rssi, pv_clearness)
                   from stdin (format binary)"""
            ) as cp:
                cp.write(health)
        conn.commit()


# --- the baseline: the job before issue 25's item 4, verbatim (SQL derivation, the whole fleet at once) ---

GRACE = timedelta(minutes=40)


def baseline_derive_day(conn: psycopg.Connection, day: date, t: rules.Thresholds) -> int:
    conn.execute("delete from unit_health_daily where day = %s", (day,))
    cur = conn.execute(BASELINE_SQL, {
        "day": day, "grace": GRACE, "min_drop": derive.MIN_NIGHT_DROP, "charging": derive.CHARGING_SOC,
        "min_cz": derive.MIN_SUN_CZ, "hot": t.hot_c, "night_gap": derive.NIGHT_GAP_INTERVALS,
        "cut_la": derive.CUT_SOC["lead_acid"], "cut_lfp": derive.CUT_SOC["lifepo4"], "v_la": V_NOMINAL["lead_acid"],
        "v_lfp": V_NOMINAL["lifepo4"]})  # fmt: skip
    return cur.rowcount


def baseline_save_soh(conn: psycopg.Connection, day: date, unit_ids: np.ndarray, soh: np.ndarray) -> None:
    keep = ~np.isnan(soh)
    if not keep.any():
        return
    conn.execute(
        """update unit_health_daily h set soh = s.soh
             from unnest(%s::bigint[], %s::real[]) as s (unit_id, soh)
            where h.unit_id = s.unit_id and h.day = %s""",
        (unit_ids[keep].tolist(), soh[keep].tolist(), day),
    )


def baseline_run_day(conn: psycopg.Connection, day: date, settings: Any) -> dict[str, int]:
    t = service.thresholds(settings)
    derived = baseline_derive_day(conn, day, t)
    w = repository.load_window(conn, day, t)  # lo/hi/today unset: the whole fleet, as before
    hits = rules.evaluate(w, t)
    soh = rules.smoothed_soh(w)
    baseline_save_soh(conn, day, w.unit_id, soh)
    firing = []
    for kind, h in hits.items():
        for j, i in enumerate(h.idx):
            level = int(h.level[j]) if h.level is not None else 1
            firing.append(repository.Firing(int(w.unit_id[i]), kind, level, h.evidence_of(j)))
    opened, resolved, reopened = repository.reconcile(conn, day, firing, t.clear_days_of(), t.reopen_days)
    service.open_technician_tickets(conn, settings)
    repository.classify_collections(conn, day, sorted(service.FAULT_KINDS), t, str(clock.company_zone()))
    repository.rebuild_outreach(conn, day, service.PLAYBOOK, list(service.COACHING_KINDS))
    return {"units": w.n, "derived": derived, "firing": len(firing), "opened": opened}


BASELINE_SQL = """
        with r as (
            select t.unit_id, t.ts, t.soc, t.load_wh, t.pv_wh, t.pv_w, t.batt_temp_c, t.locked, t.rssi,
                   lag(t.soc) over w as prev_soc, extract(epoch from t.ts - lag(t.ts) over w) as gap_s, sun.cz
              from telemetry t
              join units su on su.id = t.unit_id
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
            select unit_id, coalesce(percentile_cont(0.5) within group (order by gap_s), 1200) as iv_s
              from r where gap_s > 0 group by unit_id
        ), rw as (
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
"""

# --- one run of one path, in a child process ---


def run_one(which: str, out: Path) -> None:
    logging.basicConfig(level=logging.INFO, format="    %(message)s", stream=sys.stdout)
    settings = load_settings()
    settings = settings.model_copy(update={"database_url": owner_url(settings, DB)})
    with connect(settings, "bench") as conn, conn.transaction(force_rollback=True):
        t0 = time.perf_counter()
        counts = (service.run_day if which == "ours" else baseline_run_day)(conn, DAY, settings)
        elapsed = time.perf_counter() - t0
        derived = np.array(
            conn.execute(
                """select unit_id, received, coalesce(capacity_ah, 'NaN'), coalesce(soh, 'NaN'), min_soc, max_soc,
                          end_soc, hours_hot, hours_locked, hours_cut, hours_full, coalesce(last_rssi, -999),
                          coalesce(pv_clearness, 'NaN')
                     from unit_health_daily where day = %s order by unit_id""",
                (DAY,),
            ).fetchall(),
            np.float64,
        )
        alerts = conn.execute(
            "select unit_id, kind, level from health_alerts where last_seen_on = %s order by 1, 2", (DAY,)
        ).fetchall()
    np.save(out.with_suffix(".npy"), derived)
    out.write_text(json.dumps({"seconds": elapsed, "counts": counts, "alerts": alerts}))


def child(which: str, tmp: Path) -> dict[str, Any]:
    mem, out = tmp / f"{which}.mem", tmp / f"{which}.json"
    subprocess.run([sys.executable, "bench/peak_memory.py", str(mem), __file__, "--run", which, "--out", str(out)],
                   check=True, env=os.environ.copy())  # fmt: skip
    res = json.loads(out.read_text())
    res["peak_mb"] = int(mem.read_text()) / 1024
    res["derived"] = np.load(out.with_suffix(".npy"))
    return dict(res)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--no-baseline", action="store_true", help="time ours only (the baseline is hours at 1M)")
    ap.add_argument("--keep", action="store_true", help="keep the database (and reuse it with --reuse)")
    ap.add_argument("--reuse", action="store_true", help="the database of an earlier --keep run")
    ap.add_argument("--run", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        run_one(args.run, args.out)
        return
    settings = load_settings()
    if not args.reuse:
        fresh = fresh_database(settings, DB)
        with connect(fresh, "bench") as conn:
            t0 = time.perf_counter()
            populate(conn, args.units)
            readings = conn.execute("select count(*) from telemetry").fetchone()
            print(f"generated {args.units:,} units, {readings[0] if readings else 0:,} readings of {DAY} and "
                  f"{HISTORY_DAYS} days of daily rows in {time.perf_counter() - t0:.0f} s (load {load()})")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            print(f"ours starts (load {load()})", flush=True)
            ours = child("ours", tmp)
            print(f"ours      service.run_day, numpy derivation, slices, COPY   {ours['seconds']:8.1f} s   "
                  f"peak {ours['peak_mb']:6.0f} MB   (load {load()})  {ours['counts']}", flush=True)  # fmt: skip
            if args.no_baseline:
                return
            base = child("baseline", tmp)
            print(f"baseline  the job before (SQL sun per reading, one piece) {base['seconds']:8.1f} s   "
                  f"peak {base['peak_mb']:6.0f} MB   (load {load()})  {base['counts']}", flush=True)  # fmt: skip
            a, b = ours["derived"], base["derived"]
            same_units = a.shape == b.shape and bool((a[:, 0] == b[:, 0]).all())
            close = same_units and np.allclose(a, b, rtol=1e-4, atol=1e-4, equal_nan=True)
            if same_units and not close:
                bad = ~np.isclose(a, b, rtol=1e-4, atol=1e-4, equal_nan=True)
                print("derived rows differ in columns", sorted(set(np.argwhere(bad)[:, 1].tolist())),
                      "rows", int(bad.any(axis=1).sum()))  # fmt: skip
            same_alerts = ours["alerts"] == base["alerts"]
            print(f"speed-up {base['seconds'] / ours['seconds']:.1f}x; derived rows {len(a):,} "
                  f"{'the same' if close else 'DIFFER'}; firing alerts {len(ours['alerts']):,} "
                  f"{'the same' if same_alerts else 'DIFFER'}")  # fmt: skip
    finally:
        if not args.keep:
            drop_database(settings, DB)


if __name__ == "__main__":
    main()
