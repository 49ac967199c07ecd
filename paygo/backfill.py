"""History backfill (composition: the simulator's fleet, the money loop's credit service and ingest's
bulk writer): months of a fleet's life written straight into the database in minutes.

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

from backoffice import clock
from backoffice.credit import repository as credit_repository
from backoffice.credit import service as credit
from backoffice.registry import repository as registry
from devtools import demo_data
from firmware_sim import scenarios
from firmware_sim.engine import FIRMWARE_VERSION, INTERVAL, FleetSim, Reports
from firmware_sim.unit import UnitSpec
from ingest import bulk
from ingest import repository as telemetry
from ingest.writer import MEASURED, ensure_partitions


class BackfillError(RuntimeError):
    pass


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
    # Payments made between the contracts' signing and the window's start (ledger only, no readings).
    earlier_payments: int = 0

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


def load_units(conn: psycopg.Connection, secret_key: str, n: int, start: datetime) -> tuple[list[UnitSpec], Contracts]:
    have = registry.count_installed(conn)
    if have < n:
        demo_data.seed(conn, secret_key, customers=0)
        before = credit_repository.last_outbox_id(conn)
        demo_data.add_customers(conn, secret_key, n - have, random.Random(n), start - timedelta(days=60),
                                start - timedelta(days=1))  # fmt: skip
        # Their deposit tokens belong to the history too: dated at signing, never sent now.
        credit_repository.keep_as_history(conn, after_outbox_id=before)
    rows = registry.units_with_terms(conn, start, n)
    specs = [UnitSpec(r.serial, r.latitude, r.longitude, r.panel_wp, r.battery_ah, r.battery_chemistry) for r in rows]
    per_day, minimum = [], []
    for r in rows:
        if r.business_model == "asset_finance" and r.instalment_amount:
            per_day.append(r.instalment_amount / (r.instalment_period_days or 7))
            minimum.append(r.instalment_amount)
        else:
            per_day.append(r.price_per_day or 0)
            minimum.append(r.price_per_day or 0)
    return specs, Contracts(
        unit_id=np.array([r.unit_id for r in rows], np.int64),
        contract_id=[r.contract_id for r in rows],
        per_day=np.array(per_day, float),
        minimum=np.array(minimum, float),
        installed_s=np.array([r.installed_at.timestamp() for r in rows], float),
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
    since_signing: bool = False,
    interval: timedelta = INTERVAL,
    batch: timedelta | None = None,
) -> tuple[Result, FleetSim]:
    """Write ``days`` days of history of ``units`` units, ending at ``end`` (default: today 00:00 UTC).

    A payment's days are decided in the simulation by the credit service's own rule
    (``credit.decide``) on a copy of each contract's totals, and the unit gets them at once; the
    service then records the payment (``credit.apply_payment``) and must grant exactly those days.
    With ``connect`` (which opens autocommit connections) that recording, and the writing of each
    day's readings, run on threads of their own while the next day is simulated; each day's
    payments are one transaction, and each day's readings with their rollups another.

    Units report every ``interval`` (the firmware's 20 minutes by default); with ``batch`` they send
    their readings in batches, each unit at its own phase (OpenPAYGO Metrics units: hourly), so a
    reading reaches the platform at the unit's next batch.
    """
    end = end or clock.utc_now().replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    with conn.transaction():
        specs, contracts = load_units(conn, secret_key, units, start)
    t0 = time.perf_counter()  # the history itself, without making demo customers
    ids = contracts.unit_id
    clash = telemetry.count_readings(conn, ids.tolist(), start, end)
    if clash:
        raise BackfillError(f"{clash} readings of these units already lie between {start:%Y-%m-%d} and "
                            f"{end:%Y-%m-%d}; backfill writes a history once: use a fresh database "
                            "('paygo stack down', remove .paygo) or an earlier --end")  # fmt: skip
    with conn.transaction():
        ensure_partitions(conn, start, end + timedelta(days=1))
    mirror = credit_repository.accounts(conn, [c for c in contracts.contract_id if c is not None])
    rng = np.random.default_rng(seed)
    assignment = scenarios.assign(len(specs), mix or {"healthy": 1.0}, start, end, rng)
    sim = FleetSim(specs, start, seed=seed, credit_days=rng.uniform(0, 7, len(specs)), assignment=assignment,
                   interval=interval)  # fmt: skip
    batch_s = batch.total_seconds() if batch else 0.0
    batch_phase = np.random.default_rng(seed + 2).uniform(0, batch_s, len(specs)) if batch_s else None
    result = Result(len(specs), days, 0, 0, 0, 0.0)
    if since_signing:
        habits = np.random.default_rng(seed + 1)
        _habits(sim, contracts, end, habits)
        earlier = _earlier_payments(sim, contracts, mirror, start, habits)
        result.earlier_payments = len(earlier)
        for i in range(0, len(earlier), 500):
            with conn.transaction():
                _record_payments(conn, secret_key, earlier[i : i + 500], result)
    back_at = scenarios.link_back_at(assignment)
    latest: bulk.Columns | None = None
    threaded = connect is not None
    payer = _Worker(connect() if connect else conn, lambda c, jobs: _record_payments(c, secret_key, jobs, result))
    writer = _Worker(connect() if connect else conn, lambda c, rows: bulk.write_columns(c, rows, FIRMWARE_VERSION))
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
            rows = _day_rows(day, contracts, assignment, back_at, batch_s, batch_phase)
            if rows is not None:
                result.readings += len(rows["unit_id"])
                latest = bulk.newest(latest, rows)
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
        with conn.transaction():
            bulk.write_latest(conn, latest, FIRMWARE_VERSION)
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


# Customers who gave up: a share of those whose contract is old enough, who stop paying between
# 35 and 120 days before the window's end (in arrears for a month or more; some churned).
DEFAULT_SHARE, DEFAULT_DAYS_AGO = 0.15, (35, 120)
# Customers who pay, but late: every payment comes this many times later than the days it buys.
LATE_SHARE, LATE_FACTOR = 0.17, (1.2, 1.8)
# How many instalments an asset-finance customer pays at once (weekly, fortnightly, monthly).
INSTALMENTS_AT_ONCE, INSTALMENTS_WEIGHTS = np.array([1, 2, 4]), np.array([0.6, 0.3, 0.1])


def _habits(sim: FleetSim, c: Contracts, end: datetime, rng: np.random.Generator) -> None:
    """Paying habits a portfolio has: asset-finance customers pay one, two or four instalments at a
    time, flexible ones for 3-14 days at a time; most pay when it is due (with the simulation's own
    day or so of delay now and then), ``LATE_SHARE`` of them always some days after it, and
    ``DEFAULT_SHARE`` of the healthy units with a contract of 100 days or more become
    ``stops_paying`` units whose customer gave up one to four months ago (maybe before the window)."""
    period = np.where(c.per_day > 0, c.minimum / np.maximum(c.per_day, 1e-9), 1.0)
    asset = period > 1.5
    k = rng.choice(INSTALMENTS_AT_ONCE, size=sim.n, p=INSTALMENTS_WEIGHTS)
    sim.pay_days = np.where(asset, np.round(k * period), sim.pay_every)
    # Exact shares, not a coin per customer: a small demo portfolio tells the same story every time.
    late = rng.permutation(sim.n) < round(LATE_SHARE * sim.n)
    sim.pay_every = sim.pay_days * np.where(late, rng.uniform(*LATE_FACTOR, sim.n), 1.0)
    a = sim.assignment
    end_s = end.timestamp()
    eligible = np.flatnonzero((a.kind == 0) & (c.installed_s < end_s - 100 * 86400))
    gives_up = rng.permutation(eligible)[: round(DEFAULT_SHARE * len(eligible))]
    a.kind[gives_up] = scenarios.NAMES.index("stops_paying")
    lo, hi = DEFAULT_DAYS_AGO  # spread evenly over the months, the oldest already churned
    spread = (np.arange(len(gives_up)) + rng.uniform(0, 1, len(gives_up))) / max(len(gives_up), 1)
    a.onset[gives_up] = end_s - 86400 * (lo + (hi - lo) * spread)


def _earlier_payments(
    sim: FleetSim, c: Contracts, mirror: dict[int, credit_repository.CreditAccount], start: datetime,
    rng: np.random.Generator,
) -> list[PaymentJob]:  # fmt: skip
    """The payments of each contract signed before ``start``, from its signing up to ``start``, by the
    customer's habits (``_habits``: every ``pay_every`` days, for ``pay_days`` days of credit, three
    in ten payments a day or so late, none once a ``stops_paying`` or ``migrates`` scenario began).
    The simulation then starts each unit with the credit those payments left, and its next payment
    when the habit says; the mirror of the contracts' totals moves on as the credit service will."""
    start_s = start.timestamp()
    a = sim.assignment
    stopped = np.where(a.mask("stops_paying") | a.mask("migrates"), a.onset, np.inf)
    jobs: list[PaymentJob] = []
    credit_s = sim.credit_s.copy()
    next_pay = sim.next_pay.copy()
    unlocked = sim.unlocked.copy()
    for i in range(sim.n):
        contract = c.contract_id[i]
        installed = float(c.installed_s[i])
        if contract is None or contract not in mirror or installed >= start_s or c.per_day[i] <= 0:
            continue
        account = mirror[contract]
        credit_end = installed + account.days_granted * 86400.0
        t = max(credit_end - 86400 * rng.uniform(0, 2), installed + 86400)
        while t < min(start_s, stopped[i]) and account.state == "active":
            amount = int(max(c.minimum[i], round(sim.pay_days[i] * c.per_day[i] / c.minimum[i]) * c.minimum[i]))
            decision = credit.decide(account, amount)
            account.paid_total, account.days_granted, account.state = (
                decision.paid_total, decision.days_granted, decision.state,
            )  # fmt: skip
            jobs.append(PaymentJob(contract, amount, datetime.fromtimestamp(t, UTC), decision))
            credit_end = max(credit_end, t) + sum(decision.add_days) * 86400.0
            unlocked[i] = decision.paid_off
            late = rng.exponential(1.0) * 86400 if rng.random() < 0.3 else 0.0
            t += sim.pay_every[i] * 86400 + late
        credit_s[i] = max(credit_end - start_s, 0.0)
        next_pay[i] = max(t, start_s)  # earlier only when the customer gave up or paid off: never due
    sim.carry_in(credit_s, next_pay, unlocked)
    jobs.sort(key=lambda j: j.when)
    return jobs


def _record_payments(conn: psycopg.Connection, secret_key: str, jobs: list[PaymentJob], result: Result) -> None:
    for job in jobs:
        done = credit.apply_payment(conn, job.contract_id, job.amount, clock.business_day(job.when), secret_key,
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
    day: list[Reports],
    c: Contracts,
    a: scenarios.Assignment,
    back_at: np.ndarray,
    batch_s: float = 0.0,
    batch_phase: np.ndarray | None = None,
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
    if batch_s and batch_phase is not None:  # sent with the unit's next batch
        phase = batch_phase[idx]
        received = np.ceil((ts_s - phase) / batch_s) * batch_s + phase + 2.0
    waited = np.isfinite(back_at[idx]) & (ts_s >= a.onset[idx]) & (ts_s < back_at[idx])
    received = np.where(waited, back_at[idx] + 60.0, received)
    rows = {"unit_id": c.unit_id[idx][keep], "ts": ts_s[keep], "received_at": received[keep]}
    for name in ("seq", *(col for col in MEASURED if col != "fw")):  # the simulator keeps no firmware text per row
        rows[name] = np.concatenate([getattr(r, name) for r in day])[keep]
    # In the primary key's order (unit, time): the index grows at one place per unit, not everywhere.
    order = np.lexsort((rows["ts"], rows["unit_id"]))
    return {k: v[order] for k, v in rows.items()}
