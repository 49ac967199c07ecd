"""Detection quality of the fleet-health alerts (issues 16 and 25), scored against the simulator's ground truth.

    .venv/bin/python bench/fleet_health.py --units 1000 --days 60 --seed 2 \
        [--mix healthy=80,panel_covered=2,...] [--interval-minutes 5|20|60] [--metrics-batches] [--keep]

1. a fresh database on the local stack (``devtools.postgres.fresh_database``);
2. the fleet's history written into it by the demo's backfill (``paygo.backfill.backfill``: the
   firmware simulator's physics, firmware credit, customers paying and fault scenarios; units
   reporting every ``--interval-minutes``, in hourly batches with ``--metrics-batches``), and the
   ground truth of every unit (``firmware_sim.scenarios.write_truth``: scenario and onset);
3. the REAL daily job (``backoffice.health.service.run_day``, what the ``health.evaluate_daily`` task
   runs) over the history, day by day, as the beat schedule would have run it each night;
4. per alert kind: precision per (unit, kind) (locked too long judged by the payment history),
   recall and median time to detect against the mapping from scenario to alert kinds of
   ``docs/fleet_health.md`` (``EXPECTED`` below is that table), ``n/a`` where there is nothing to
   judge; re-openings per 100 alerted (unit, kind) pairs; healthy units falsely alerted per 100,
   technical and collections kinds apart.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from backoffice.config import Settings, load_settings
from backoffice.db import connect
from backoffice.health import service
from backoffice.health.rules import KINDS
from devtools.stack import drop_database, fresh_database
from firmware_sim import scenarios
from paygo.backfill import backfill

DB = "paygo_bench_fleet_health"
END = datetime(2026, 6, 1, tzinfo=UTC)
# The default mix: ≥ 10 % faulty units, every scenario present.
MIX = ("healthy=70,panel_covered=3,battery_failing=3,deep_discharge=3,overheating=3,tampered=3,gsm_outage=3,"
       "stops_paying=3,migrates=3,usage_dropping=3")  # fmt: skip


@dataclass(frozen=True)
class Expect:
    """The alert kinds a scenario must raise (``must``, by ``days`` after onset) and may raise (``may``)."""

    must: tuple[str, ...]
    days: int
    may: tuple[str, ...] = ()


# docs/fleet_health.md, "Scenario → alert kinds".
EXPECTED: dict[str, Expect] = {
    "healthy": Expect((), 0),
    "panel_covered": Expect(("pv_underperformance",), 10, ("chronic_deep_discharge",)),
    "battery_failing": Expect(("battery_degrading",), 30, ("chronic_deep_discharge",)),
    "deep_discharge": Expect(("chronic_deep_discharge", "system_too_small"), 10),
    "overheating": Expect(("over_temperature",), 7),
    "tampered": Expect(("tamper",), 10, ("chronic_deep_discharge",)),
    "gsm_outage": Expect(("offline",), 3),
    "migrates": Expect(("offline",), 3),
    "stops_paying": Expect(("locked_too_long",), 25),
    "usage_dropping": Expect(("usage_drop",), 35),
}


def build(settings: Settings, units: int, days: int, seed: int, mix: dict[str, float], truth: Path,
          interval: timedelta, batch: timedelta | None) -> Settings:  # fmt: skip
    db = fresh_database(settings, DB)
    with connect(db, "bench", autocommit=True) as conn:
        t0 = time.perf_counter()
        result, sim = backfill(conn, db.secret_key, units, days, end=END, seed=seed, mix=mix,
                               connect=lambda: connect(db, "bench", autocommit=True), interval=interval,
                               batch=batch)  # fmt: skip
        print(f"history: {result.units} units × {days} days, {result.readings:,} readings "
              f"in {time.perf_counter() - t0:.0f} s", file=sys.stderr)  # fmt: skip
    scenarios.write_truth(truth, sim.serials, sim.assignment)
    return db


def replay(db: Settings, days: int) -> float:
    """The daily job for each night of the history, in order (the job as the schedule runs it)."""
    t0 = time.perf_counter()
    first = (END - timedelta(days=days)).date()
    with connect(db, "bench", autocommit=True) as conn:
        for d in range(days):
            with conn.transaction():
                service.run_day(conn, first + timedelta(days=d), db)
    return time.perf_counter() - t0


COLLECTIONS_KINDS = ("locked_too_long",)  # the others are technical (the unit, the kit, its use)


@dataclass
class Scored:
    kind: str
    precision: float | None  # None: nothing raised (n/a)
    recall: float | None  # None: nothing to find (n/a)
    median_days: float | None
    pairs: int  # (unit, kind) pairs that raised this kind
    due: int
    reopenings: int  # times a (unit, kind) alert came back after closing (a new row or the same row re-opened)


def score(db: Settings, truth: Path, days: int) -> tuple[list[Scored], dict[str, float]]:
    """Per kind: precision over (unit, kind) pairs, recall, days to detect and re-openings; and the
    fleet's figures: re-openings per 100 alerted (unit, kind) pairs, healthy units falsely alerted per
    100 healthy units (technical and collections kinds apart)."""
    end_day = END.date()
    rows = list(csv.DictReader(truth.open()))
    with connect(db, "bench") as conn:
        serial_id = dict(conn.execute("select serial, id from units").fetchall())
        # Each (unit, kind): the days each spell of firing began (the alert's episodes) and its re-openings.
        starts: dict[tuple[int, str], list[date]] = {}
        reopen: dict[tuple[int, str], int] = {}
        for unit_id, kind, opened, evidence in conn.execute(
            "select unit_id, kind, opened_on, evidence from health_alerts order by id"
        ):
            key = (unit_id, kind)
            eps = [date.fromisoformat(e[0]) for e in evidence.get("episodes", [[opened.isoformat()]])]
            # A second row for a pair is a re-opening too (the alert had closed and come back as new).
            reopen[key] = reopen.get(key, -1) + 1 + int(evidence.get("reopened", 0))
            starts.setdefault(key, []).extend(eps)
        lapses = _ledger_lapses(conn)
        unfilled = {(u, d) for u, d in conn.execute("select unit_id, day from unit_health_daily where max_soc < 0.95")}
    out: list[Scored] = []
    covered_found: list[bool] = []
    false_healthy: dict[str, set[int]] = {"technical": set(), "collections": set()}
    healthy = 0
    for kind in KINDS:
        right = wrong = due = found = reopened = 0
        delays: list[float] = []
        for r in rows:
            unit = serial_id[r["serial"]]
            exp = EXPECTED[r["scenario"]]
            onset = datetime.fromisoformat(r["onset"].replace("Z", "+00:00")).date() if r["onset"] else None
            healthy += kind == KINDS[0] and r["scenario"] == "healthy"
            spells = sorted(starts.get((unit, kind), []))
            if spells:
                reopened += reopen[(unit, kind)]
                first = spells[0]
                if kind == "locked_too_long":
                    # Right when the payments say so (the ledger, not the lock the rule reads): the
                    # customer had stopped paying, or was paying late, when the alert first opened.
                    ok = any(a + timedelta(days=1) <= first <= b for a, b in lapses.get(unit, []))
                else:
                    # Right when the unit's scenario calls for the kind and the alert first opened no
                    # earlier than a day before the fault's onset.
                    ok = (kind in exp.must or kind in exp.may) and onset is not None and first >= onset - timedelta(1)
                right += ok
                wrong += not ok
                if not ok and r["scenario"] == "healthy":
                    false_healthy["collections" if kind in COLLECTIONS_KINDS else "technical"].add(unit)
            by = onset + timedelta(days=exp.days) if onset is not None else None
            if r["scenario"] == "stops_paying" and by is not None:
                # A customer who paid ahead has more than the 14 days of credit EXPECTED assumes: by the
                # ledger, its credit's end, then 3 whole days locked (and a day for the night's job).
                ran_out = max((a for a, b in lapses.get(unit, []) if b > onset), default=None)
                if ran_out is not None:
                    by = max(by, ran_out + timedelta(days=5))
            if r["scenario"] == "usage_dropping" and onset is not None:
                # Usage falls linearly to 15 % by the ramp's end: half of it after 59 % of the ramp,
                # then a week to see it (the rule reads a week's mean).
                ramp_end = datetime.fromisoformat(r["detail"].split(" by ")[1].replace("Z", "+00:00")).date()
                by = onset + timedelta(days=round(0.59 * (ramp_end - onset).days) + 7)
            if kind in exp.must and onset is not None and by is not None and by < end_day:
                due += 1
                hit = [d for d in spells if onset - timedelta(1) <= d <= by]
                if hit:
                    found += 1
                    delays.append(max((hit[0] - onset).days, 0))
        if kind == "pv_underperformance":
            covered_found.extend(_covered_that_bite(rows, serial_id, starts, unfilled, end_day))
        out.append(Scored(kind, right / (right + wrong) if right + wrong else None, found / due if due else None,
                          statistics.median(delays) if delays else None, right + wrong, due, reopened))  # fmt: skip
    if covered_found:
        print(f"pv_underperformance: of {len(covered_found)} covered panels whose battery stopped filling "
              f"(≥ 4 days not full after the onset, due), {sum(covered_found)} were found "
              f"(recall {sum(covered_found) / len(covered_found):.3f}); the others still fill their battery",
              file=sys.stderr)  # fmt: skip
    pairs = sum(x.pairs for x in out)
    fleet = {
        "reopenings": sum(x.reopenings for x in out),
        "reopenings_per_100_pairs": 100 * sum(x.reopenings for x in out) / pairs if pairs else 0.0,
        "pairs": pairs,
        "healthy": healthy,
        "false_technical_per_100": 100 * len(false_healthy["technical"]) / healthy if healthy else 0.0,
        "false_collections_per_100": 100 * len(false_healthy["collections"]) / healthy if healthy else 0.0,
    }
    return out, fleet


def _ledger_lapses(conn: Any) -> dict[int, list[tuple[date, date]]]:
    """Per unit, the spells its customer was out of paid credit by the payment history alone (the
    add-time tokens the payments of the history bought: days, and the day paid), from the day the
    credit bought so far ran out to the next payment (or the end). The credit a unit started the
    history with is not in the ledger: the chain starts at its first payment, and a customer whose
    first payment came later than the 7 days of credit the bench starts units with at most (or who
    never paid) was out of credit from then."""
    start_row = conn.execute("select min(ts) from telemetry").fetchone()
    start = start_row[0] if start_row and start_row[0] else END
    pays: dict[int, list[tuple[datetime, int]]] = {}
    for unit, at, days in conn.execute(
        """select unit_id, created_at, value_days from tokens where token_type = 'add_time' and created_at >= %s
            order by unit_id, created_at""",
        (start,),
    ):
        pays.setdefault(unit, []).append((at, days))
    out: dict[int, list[tuple[date, date]]] = {}
    for (unit,) in conn.execute("select id from units"):
        spells = []
        credit_end = start + timedelta(days=7)
        for k, (at, days) in enumerate(pays.get(unit, [])):
            if at > credit_end + timedelta(days=1):
                spells.append((credit_end.date(), at.date()))
            credit_end = (at if k == 0 else max(credit_end, at)) + timedelta(days=days)
        spells.append((credit_end.date(), END.date() + timedelta(days=1)))
        out[unit] = spells
    return out


def _covered_that_bite(rows: list[dict[str, str]], serial_id: dict[str, int], alerts: dict[tuple[int, str], list[date]],
                       unfilled: set[tuple[int, date]], end_day: date) -> list[bool]:  # fmt: skip
    """For each covered panel due for detection whose battery then failed to fill on ≥ 4 days: found or not."""
    exp = EXPECTED["panel_covered"]
    out = []
    for r in rows:
        if r["scenario"] != "panel_covered" or not r["onset"]:
            continue
        unit = serial_id[r["serial"]]
        onset = datetime.fromisoformat(r["onset"].replace("Z", "+00:00")).date()
        by = onset + timedelta(days=exp.days)
        if by >= end_day:
            continue
        days = [onset + timedelta(days=k) for k in range((by - onset).days + 1)]
        if sum((unit, d) in unfilled for d in days) >= 4:
            out.append(any(onset <= d <= by for d in alerts.get((unit, "pv_underperformance"), [])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--mix", default=MIX, help="as 'paygo sim run --scenario-mix'")
    ap.add_argument("--interval-minutes", type=int, default=20, help="each unit reports every N minutes (5, 20, 60)")
    ap.add_argument(
        "--metrics-batches",
        action="store_true",
        help="units send their readings in hourly batches (OpenPAYGO Metrics), each at its own phase",
    )
    ap.add_argument("--keep", action="store_true", help="keep the database (and reuse it with --reuse)")
    ap.add_argument("--reuse", action="store_true", help="skip the simulation: score the kept database again")
    ap.add_argument("--score-only", action="store_true", help="with --reuse: score the alerts already there")
    args = ap.parse_args()
    settings = load_settings()
    truth = Path(tempfile.gettempdir()) / f"fleet_health_truth_{args.seed}.csv"
    if args.reuse:
        db = settings.model_copy(update={"database_url": f"postgresql://paygo_owner@127.0.0.1:{settings.pg_port}/{DB}"})
        if not args.score_only:
            with connect(db, "bench", autocommit=True) as conn:
                service.reset(conn)
    else:
        db = build(
            settings,
            args.units,
            args.days,
            args.seed,
            scenarios.parse_mix(args.mix),
            truth,
            timedelta(minutes=args.interval_minutes),
            timedelta(hours=1) if args.metrics_batches else None,
        )
    try:
        if not args.score_only:
            seconds = replay(db, args.days)
            print(f"daily job over {args.days} days: {seconds:.1f} s", file=sys.stderr)
        results, fleet = score(db, truth, args.days)
    finally:
        if not args.keep and not args.reuse:
            drop_database(settings, DB)
    print(
        f"{'kind':<24} {'precision':>9} {'recall':>7} {'median days to detect':>22} {'pairs':>6} {'due':>5} "
        f"{'re-openings':>11}"
    )

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    for x in results:
        m = "-" if x.median_days is None else f"{x.median_days:.1f}"
        print(
            f"{x.kind:<24} {fmt(x.precision):>9} {fmt(x.recall):>7} {m:>22} {x.pairs:>6} {x.due:>5} {x.reopenings:>11}"
        )
    print(
        f"re-openings: {fleet['reopenings']:.0f} of {fleet['pairs']:.0f} alerted (unit, kind) pairs, "
        f"{fleet['reopenings_per_100_pairs']:.1f} per 100 pairs"
    )
    print(
        f"healthy units falsely alerted, per 100 of {fleet['healthy']:.0f}: technical kinds "
        f"{fleet['false_technical_per_100']:.1f}, collections kinds {fleet['false_collections_per_100']:.1f}"
    )
    ps = [x.precision for x in results if x.precision is not None]
    rs = [x.recall for x in results if x.recall is not None]
    print(f"lowest precision {fmt(min(ps) if ps else None)} lowest recall {fmt(min(rs) if rs else None)}")


if __name__ == "__main__":
    main()
