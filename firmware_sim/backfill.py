"""History backfill: months of a fleet's life written straight into the database in minutes.

The same engine as the live fleet (physics, firmware credit, scenarios, customers paying) runs over
the window day by day. Each simulated day is one transaction:

- the customers' payments go through the money loop's service layer (``credit.apply_payment``:
  ledger rows, tokens, deliveries), and the days each payment buys become the unit's credit, so
  telemetry, ledger and KPIs tell one story; the deliveries are kept in state ``history`` so the
  dispatcher never sends them now;
- the readings go in by one binary COPY built with numpy (no Python object per reading), with
  ``received_at`` late for readings that waited out a GSM outage, and none for a unit that has
  gone silent;
- the daily rollups (``telemetry_daily``) of that day are computed from the same arrays.

Units come from the database (the oldest installed first); when there are fewer than asked, more
demo customers with installed units are created.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from backoffice import demo_data
from backoffice.credit import repository as credit_repository
from backoffice.credit import service as credit
from firmware_sim import scenarios
from firmware_sim.engine import FIRMWARE_VERSION, FleetSim, Reports
from firmware_sim.unit import UnitSpec
from ingest.writer import COLUMNS, DAILY_MERGE, LATEST_COLUMNS, LATEST_MERGE, LOW_SOC, REPORT_HOURS, ensure_partitions

PG_EPOCH_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
DAILY_COLS = ("unit_id", "day", "energy_in_wh", "energy_out_wh", "min_batt_v", "max_batt_v", "hours_low_soc",
              "max_batt_temp_c", "reports")  # fmt: skip


Columns = dict[str, np.ndarray]


class BackfillError(RuntimeError):
    pass


def synthetic_specs(n: int, seed: int = 0) -> list[UnitSpec]:
    """Units that exist only in the simulator (load tests): the demo company's kits and villages."""
    rng = random.Random(seed)
    kits = [(int(str(p["panel_wp"])), float(str(p["battery_ah"])), str(p["battery_chemistry"]))
            for p in demo_data.PRODUCTS]  # fmt: skip
    out = []
    for i in range(1, n + 1):
        _, _, lat, lon = rng.choice(demo_data.VILLAGES)
        wp, ah, chem = rng.choices(kits, weights=[6, 2, 3])[0]
        out.append(UnitSpec(f"SIM{i:06d}", lat + rng.uniform(-0.15, 0.15), lon + rng.uniform(-0.15, 0.15),
                            wp, ah, chem))  # fmt: skip
    return out


def binary_copy(columns: list[tuple[str, np.ndarray]], n: int) -> memoryview:
    """PostgreSQL's binary COPY format for fixed-width columns, built as one numpy record array.

    Each column is (a big-endian numpy type, the values); a text column is given as ``S<k>`` bytes
    of one length. NULLs are not supported (the backfill has none).
    """
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    for k, (kind, _) in enumerate(columns):
        fields += [(f"len{k}", ">i4"), (f"val{k}", kind)]
    dtype = np.dtype(fields)
    # Header (signature, flags, no extension), the rows written in place, and the trailer.
    out = np.empty(19 + n * dtype.itemsize + 2, np.uint8)
    out[:19] = np.frombuffer(b"PGCOPY\n\xff\r\n\x00" + bytes(8), np.uint8)
    out[-2:] = 0xFF  # -1 as a 16-bit field count: the end
    rows = out[19:-2].view(dtype)
    rows["nfields"] = len(columns)
    for k, (kind, values) in enumerate(columns):
        rows[f"len{k}"] = np.dtype(kind).itemsize
        rows[f"val{k}"] = values
    return memoryview(out.data)


def _pg_ts(seconds: np.ndarray) -> np.ndarray:
    return (np.round(seconds * 1_000_000) - PG_EPOCH_US).astype(np.int64)


@dataclass
class Contracts:
    unit_id: np.ndarray
    contract_id: list[int | None]
    # What buying one day costs, in minor units, and the smallest payment the contract takes.
    per_day: np.ndarray
    minimum: np.ndarray
    installed_s: np.ndarray


@dataclass
class Result:
    units: int
    days: int
    readings: int
    payments: int
    tokens: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


def load_units(conn: psycopg.Connection, secret_key: str, n: int, start: datetime) -> tuple[list[UnitSpec], Contracts]:
    have = int(conn.execute("select count(*) from units where state = 'installed'").fetchone()[0])  # type: ignore[index]
    if have < n:
        demo_data.seed(conn, secret_key, customers=0)
        before = conn.execute("select coalesce(max(id), 0) from outbox").fetchone()[0]  # type: ignore[index]
        demo_data.add_customers(conn, secret_key, n - have, random.Random(n), start - timedelta(days=60),
                                start - timedelta(days=1))  # fmt: skip
        # Their deposit tokens belong to the history too: dated at signing, never sent now.
        conn.execute(
            """with t as (update tokens t set created_at = c.signed_on from contracts c
                           where c.id = t.contract_id
                             and t.id in (select token_id from outbox where id > %(before)s)
                       returning t.id, t.created_at)
               update outbox o set state = 'history', created_at = t.created_at, sent_at = t.created_at
                 from t where t.id = o.token_id and o.state = 'pending'""",
            {"before": before},
        )
    rows = conn.execute(
        """select u.id, u.serial, coalesce(u.latitude, 11.55), coalesce(u.longitude, 104.92), p.panel_wp,
                  p.battery_ah::float8, p.battery_chemistry, coalesce(u.installed_at, %s), c.id,
                  p.business_model, p.price_per_day, p.instalment_amount, p.instalment_period_days
             from units u join products p on p.id = u.product_id
             left join lateral (select id from contracts c where c.unit_id = u.id and c.state = 'active'
                                 order by c.signed_on desc limit 1) c on true
            where u.state = 'installed' order by u.installed_at nulls first, u.id limit %s""",
        (start, n),
    ).fetchall()
    specs = [UnitSpec(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]
    per_day, minimum = [], []
    for r in rows:
        if r[9] == "asset_finance" and r[11]:
            per_day.append(r[11] / (r[12] or 7))
            minimum.append(r[11])
        else:
            per_day.append(r[10] or 0)
            minimum.append(r[10] or 0)
    return specs, Contracts(
        unit_id=np.array([r[0] for r in rows], np.int64),
        contract_id=[r[8] for r in rows],
        per_day=np.array(per_day, float),
        minimum=np.array(minimum, float),
        installed_s=np.array([r[7].timestamp() for r in rows], float),
    )


@dataclass
class PaymentJob:
    """A payment decided in the simulation, for the credit service to record."""

    contract_id: int
    amount: int
    when: datetime
    expected: credit.Decision


def backfill(
    conn: psycopg.Connection,
    secret_key: str,
    units: int,
    days: int,
    *,
    end: datetime | None = None,
    seed: int = 0,
    mix: dict[str, float] | None = None,
    progress: Callable[[int, int], None] = lambda day, readings: None,
    connect: Callable[[], psycopg.Connection] | None = None,
) -> tuple[Result, FleetSim]:
    """Write ``days`` days of history of ``units`` units, ending at ``end`` (default: today 00:00 UTC).

    A payment's days are decided in the simulation by the credit service's own rule
    (``credit.decide``) on a copy of each contract's totals, and the unit gets them at once; the
    service then records the payment (``credit.apply_payment``) and must grant exactly those days.
    With ``connect`` (which opens autocommit connections) that recording, and the writing of each
    day's readings, run on threads of their own while the next day is simulated; each day's
    payments are one transaction, and each day's readings with their rollups another.
    """
    end = end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    with conn.transaction():
        specs, contracts = load_units(conn, secret_key, units, start)
    t0 = time.perf_counter()  # the history itself, without making demo customers
    ids = contracts.unit_id
    clash = conn.execute("select count(*) from telemetry where unit_id = any(%s) and ts >= %s and ts < %s",
                         (ids.tolist(), start, end)).fetchone()  # fmt: skip
    if clash and clash[0]:
        raise BackfillError(f"{clash[0]} readings of these units already lie between {start:%Y-%m-%d} and "
                            f"{end:%Y-%m-%d}; backfill writes a history once: use a fresh database "
                            "('paygo stack down', remove .paygo) or an earlier --end")  # fmt: skip
    with conn.transaction():
        ensure_partitions(conn, start, end + timedelta(days=1))
    mirror = credit_repository.accounts(conn, [c for c in contracts.contract_id if c is not None])
    rng = np.random.default_rng(seed)
    assignment = scenarios.assign(len(specs), mix or {"healthy": 1.0}, start, end, rng)
    sim = FleetSim(specs, start, seed=seed, credit_days=rng.uniform(0, 7, len(specs)), assignment=assignment)
    back_at = scenarios.link_back_at(assignment)
    result = Result(len(specs), days, 0, 0, 0, 0.0)
    latest: Columns | None = None
    threaded = connect is not None
    payer = _Worker(connect() if connect else conn, lambda c, jobs: _record_payments(c, secret_key, jobs, result))
    writer = _Worker(connect() if connect else conn, _write_rows)
    try:
        for d in range(days):
            day: list[Reports] = []
            jobs: list[PaymentJob] = []
            for reports, _events, payments in sim.advance_to(start + timedelta(days=d + 1)):
                for p in payments:
                    job = _decide(sim, contracts, mirror, p.idx, p.days, p.ts)
                    if job is not None:
                        jobs.append(job)
                if reports is not None:
                    day.append(reports)
            result.payments += len(jobs)
            payer.put(jobs, threaded)
            rows = _day_rows(day, contracts, assignment, back_at)
            if rows is not None:
                result.readings += len(rows["unit_id"])
                latest = _newest(latest, rows)
                writer.put(rows, threaded)
            progress(d + 1, result.readings)
    finally:
        try:
            payer.close()
            writer.close()
        finally:
            if threaded:
                payer.conn.close()
                writer.conn.close()
    if latest is not None:
        _write_latest(conn, latest)
    result.seconds = time.perf_counter() - t0
    return result, sim


def _decide(sim: FleetSim, c: Contracts, mirror: dict[int, credit_repository.CreditAccount], i: int, days: int,
            when: datetime) -> PaymentJob | None:  # fmt: skip
    """The customer pays for about ``days`` days (whole instalments); the unit gets what that buys."""
    contract = c.contract_id[i]
    if contract is None or contract not in mirror or c.per_day[i] <= 0 or when.timestamp() < c.installed_s[i]:
        return None
    amount = int(max(c.minimum[i], round(days * c.per_day[i] / c.minimum[i]) * c.minimum[i]))
    a = mirror[contract]
    decision = credit.decide(a, amount)
    a.paid_total, a.days_granted, a.state = decision.paid_total, decision.days_granted, decision.state
    sim.add_credit(i, sum(decision.add_days))
    if decision.paid_off:
        sim.unlock_forever(i)
    return PaymentJob(contract, amount, when, decision)


def _record_payments(conn: psycopg.Connection, secret_key: str, jobs: list[PaymentJob], result: Result) -> None:
    for job in jobs:
        done = credit.apply_payment(conn, job.contract_id, job.amount, job.when.date(), secret_key,
                                    history_at=job.when)  # fmt: skip
        if done.days_added != sum(job.expected.add_days) or done.paid_off != job.expected.paid_off:
            raise BackfillError(
                f"the credit service granted contract {job.contract_id} {done.days_added} days (paid off: "
                f"{done.paid_off}) where the simulation expected {sum(job.expected.add_days)} "
                f"({job.expected.paid_off}): was the contract changed while the backfill ran?"
            )
        result.tokens += len(done.tokens)


class _Worker:
    """Runs ``fn(conn, item)`` for each item in a transaction of its own, on a thread (at most two
    items behind the caller) or inline; an error is raised to the caller at the next put or close."""

    def __init__(self, conn: psycopg.Connection, fn: Callable[[psycopg.Connection, Any], None]) -> None:
        self.conn, self.fn = conn, fn
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def _do(self, item: Any) -> None:
        with self.conn.transaction():
            self.fn(self.conn, item)

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self._do(item)
                except BaseException as err:  # handed to the simulating thread, which raises it
                    self.error = err

    def put(self, item: Any, threaded: bool) -> None:
        if self.error is not None:
            raise self.error
        if not threaded:
            self._do(item)
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        self.queue.put(item)

    def close(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
        if self.error is not None:
            raise self.error


def _day_rows(
    day: list[Reports], c: Contracts, a: scenarios.Assignment, back_at: np.ndarray
) -> dict[str, np.ndarray] | None:
    """One simulated day's readings as columns, without those that never reached the platform."""
    if not day:
        return None
    idx = np.concatenate([r.idx for r in day])
    ts_s = np.concatenate([np.full(len(r.idx), r.ts.timestamp()) for r in day])
    # Readings before installation, and those of a unit gone silent for good, never arrive.
    keep = ts_s >= c.installed_s[idx]
    keep &= ~(a.mask("migrates")[idx] & (ts_s >= a.onset[idx]))
    if not keep.any():
        return None
    received = ts_s + 2.0
    waited = np.isfinite(back_at[idx]) & (ts_s >= a.onset[idx]) & (ts_s < back_at[idx])
    received = np.where(waited, back_at[idx] + 60.0, received)
    rows = {"unit_id": c.unit_id[idx][keep], "ts": ts_s[keep], "received_at": received[keep]}
    for name in ("seq", "batt_v", "batt_a", "soc", "batt_temp_c", "pv_v", "pv_w", "pv_wh", "load_wh", "credit_s",
                 "locked", "rssi"):  # fmt: skip
        rows[name] = np.concatenate([getattr(r, name) for r in day])[keep]
    # In the primary key's order (unit, time): the index grows at one place per unit, not everywhere.
    order = np.lexsort((rows["ts"], rows["unit_id"]))
    return {k: v[order] for k, v in rows.items()}


def _telemetry_payload(rows: dict[str, np.ndarray], columns: tuple[str, ...] = COLUMNS) -> memoryview:
    fw = FIRMWARE_VERSION.encode()
    n = len(rows["unit_id"])
    types = {"unit_id": ">i8", "ts": ">i8", "seq": ">i8", "received_at": ">i8", "credit_s": ">i8", "locked": "?",
             "rssi": ">i2", "fw": f"S{len(fw)}"}  # fmt: skip
    values = {**rows, "ts": _pg_ts(rows["ts"]), "received_at": _pg_ts(rows["received_at"]), "fw": np.full(n, fw)}
    return binary_copy([(types.get(name, ">f4"), values[name]) for name in columns], n)


def _write_rows(conn: psycopg.Connection, rows: dict[str, np.ndarray]) -> None:
    with conn.cursor() as cur:
        with cur.copy(f"copy telemetry ({', '.join(COLUMNS)}) from stdin (format binary)") as cp:
            cp.write(_telemetry_payload(rows))
        _write_daily(cur, rows["unit_id"], rows["ts"], rows["batt_v"], rows["soc"], rows["batt_temp_c"],
                     rows["pv_wh"], rows["load_wh"])  # fmt: skip


def _newest(latest: dict[str, np.ndarray] | None, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each unit's newest reading so far (rows come in time order, so the last of a unit wins)."""
    merged = rows if latest is None else {k: np.concatenate([latest[k], rows[k]]) for k in rows}
    order = np.lexsort((merged["seq"], merged["ts"], merged["unit_id"]))
    last = order[np.r_[merged["unit_id"][order][1:] != merged["unit_id"][order][:-1], True]]
    return {k: v[last] for k, v in merged.items()}


def _write_daily(cur: psycopg.Cursor, unit_id: np.ndarray, ts_s: np.ndarray, batt_v: np.ndarray, soc: np.ndarray,
                 temp: np.ndarray, pv_wh: np.ndarray, load_wh: np.ndarray) -> None:  # fmt: skip
    """The day's rollups, as the ingest writer keeps them (same low-charge threshold and hours)."""
    day = (ts_s // 86400).astype(np.int64)
    keys, inv = np.unique(np.stack([unit_id, day]), axis=1, return_inverse=True)
    inv = inv.ravel()
    m = keys.shape[1]
    f32 = np.float32

    def reduce(fn: np.ufunc, values: np.ndarray, init: float) -> np.ndarray:
        out = np.full(m, init, np.float64)
        fn.at(out, inv, values.astype(f32).astype(np.float64))
        return out

    energy_in = np.bincount(inv, weights=pv_wh.astype(f32).astype(np.float64), minlength=m)
    energy_out = np.bincount(inv, weights=load_wh.astype(f32).astype(np.float64), minlength=m)
    low = np.bincount(inv, weights=(soc.astype(f32) < LOW_SOC).astype(float), minlength=m) * REPORT_HOURS
    reports = np.bincount(inv, minlength=m)
    pg_day = keys[1] - 10957  # days since 2000-01-01
    payload = binary_copy(
        [
            (">i8", keys[0]), (">i4", pg_day), (">f8", energy_in), (">f8", energy_out),
            (">f4", reduce(np.minimum, batt_v, np.inf)), (">f4", reduce(np.maximum, batt_v, -np.inf)),
            (">f4", low), (">f4", reduce(np.maximum, temp, -np.inf)), (">i4", reports),
        ],
        m,
    )  # fmt: skip
    # Merged like the ingest writer does, in case live readings of these days were already rolled up.
    cur.execute("create temp table if not exists daily_stage (like telemetry_daily) on commit delete rows")
    with cur.copy(f"copy daily_stage ({', '.join(DAILY_COLS)}) from stdin (format binary)") as cp:
        cp.write(payload)
    cur.execute(f"insert into telemetry_daily as d select * from daily_stage {DAILY_MERGE}")


def _write_latest(conn: psycopg.Connection, latest: dict[str, np.ndarray]) -> None:
    """Each unit's newest backfilled reading, for the look-up pages (a newer live one is kept)."""
    cols = ", ".join(LATEST_COLUMNS)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("create temp table if not exists latest_stage (like unit_latest) on commit drop")
        with cur.copy(f"copy latest_stage ({cols}) from stdin (format binary)") as cp:
            cp.write(_telemetry_payload(latest, LATEST_COLUMNS))
        cur.execute(f"insert into unit_latest ({cols}) select {cols} from latest_stage {LATEST_MERGE}")
