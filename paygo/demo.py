"""The demo's orchestration: a seeded company with a history, unit credentials on the broker, a KPI
snapshot, and the platform's processes run as children that stop in order."""

from __future__ import annotations

import random
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from backoffice import clock
from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.credit import repository as credit_repository
from backoffice.db import connect
from backoffice.devices import broker
from backoffice.devices import service as devices
from backoffice.health import service as health
from backoffice.ledger import repository as ledger_repository
from backoffice.migrate import migrate
from backoffice.registry import repository as registry_repository
from backoffice.staff import repository as staff_repository
from backoffice.staff import service as staff
from backoffice.staff.schemas import ROLES
from devtools import demo_data
from firmware_sim import scenarios
from firmware_sim.engine import INTERVAL
from kpi.service import take_snapshots
from paygo.backfill import Result, backfill

HISTORY_DAYS = 60
DEMO = Actor("demo")


def prepare_database(settings: Settings, units: int) -> bool:
    """Migrate, and seed the demo company into an empty database; True when it was seeded now."""
    with connect(settings, "demo", autocommit=True) as conn:
        migrate(conn)
    with connect(settings, "demo") as conn:
        before = credit_repository.last_outbox_id(conn)
        seeded = demo_data.seed(conn, settings.secret_key, units)
        # The deposits were paid when the contracts were signed, months ago: their tokens are history.
        credit_repository.keep_as_history(conn, after_outbox_id=before)
        conn.commit()
    return bool(seeded)


def write_history(settings: Settings, units: int, seed: int = 0) -> tuple[Result, Path, datetime]:
    """The demo's past, ending now: every contract's payments since its signing (ledger and tokens),
    and the last ``HISTORY_DAYS`` days of the units' lives (readings, rollups and the
    payments they made) with the default scenario mix, so that the KPI page, the unit pages and
    their charts show a portfolio up to this minute. The truth of the scenarios goes to a file.
    Returns the history's end, one reporting interval ago: the live simulation continues from
    there (each unit first sends the reading of the last interval) and then runs on the real clock."""
    end = clock.utc_now().replace(second=0, microsecond=0) - INTERVAL
    with connect(settings, "backfill", autocommit=True) as conn:
        mix = scenarios.parse_mix(scenarios.DEFAULT_MIX)
        result, sim = backfill(conn, settings.secret_key, units, HISTORY_DAYS, end=end, mix=mix, seed=seed,
                               since_signing=True,
                               connect=lambda: connect(settings, "backfill", autocommit=True))  # fmt: skip
    truth = settings.home_dir / "demo-truth.csv"
    scenarios.write_truth(truth, sim.serials, sim.assignment)
    # What has happened to each unit by the history's end (a scenario whose onset is still to come has not).
    a = sim.assignment
    story = {serial: scenarios.NAMES[a.kind[i]] if a.onset[i] <= end.timestamp() else "healthy"
             for i, serial in enumerate(sim.serials)}  # fmt: skip
    with connect(settings, "demo") as conn, conn.transaction():
        demo_data.open_story_tickets(conn, story, clock.today())
    return result, truth, end


def evaluate_history(settings: Settings, end: datetime) -> int:
    """The nightly fleet-health job for each whole day of the history, in order, as the beat schedule
    would have run it each night: the fleet-health page, the outreach queue, state of health and the
    technician tickets are there when the pages first open (``paygo demo`` runs it right after
    starting the live processes, so that the first live readings are not kept waiting). Returns the
    nights evaluated."""
    first = (end - timedelta(days=HISTORY_DAYS)).date()
    nights = (end.date() - first).days  # the history's last (partial) day is tonight's job
    with connect(settings, "worker") as conn:
        for d in range(nights):
            with conn.transaction():
                health.run_day(conn, first + timedelta(days=d), settings)
    return nights


def provision_units(settings: Settings) -> None:
    """Every unit gets its MQTT login (the simulated units log in as themselves) and the broker knows it."""
    with connect(settings, "devices") as conn, conn.transaction():
        issued = devices.provision(conn, settings.secret_key)
        devices.write_password_file(conn, settings.device_password_file)
        logins = devices.broker_logins(conn, settings.secret_key)
    broker.reload(settings)
    broker.sync(settings, logins, reset=issued)


def staff_logins(settings: Settings) -> dict[str, str]:
    """One demo user per role, each with a fresh random password (development and test only: a
    production database never gets a known login); returns user -> password."""
    if settings.environment == "production":
        return {}
    logins = {}
    with connect(settings, "demo") as conn, conn.transaction():
        for role in ROLES:
            name = f"demo-{role.replace('_', '-')}"
            password = secrets.token_urlsafe(12)
            if staff_repository.user_by_name(conn, name) is None:
                staff.add_user(conn, name, [role], DEMO, password)
            else:
                staff.reset_password(conn, name, DEMO, password)
            logins[name] = password
        demo_data.link_demo_agent(conn)  # the demo's field agent is agent KE-A1, with tickets and stock
    return logins


def snapshot_dates(today: date, months: int = 12) -> list[date]:
    """The month ends of the last ``months`` months (the KPI page's series), yesterday (what the
    daily job keeps) and today (the page's latest figures, the day's payments included)."""
    ends = []
    first = today.replace(day=1)
    for _ in range(months):
        ends.append(first - timedelta(days=1))
        first = ends[-1].replace(day=1)
    return sorted({*ends, today - timedelta(days=1), today})


def snapshot_kpis(settings: Settings) -> dict[str, Any]:
    """The KPI snapshots of ``snapshot_dates`` (for the KPI page); returns today's overall KPIs."""
    with connect(settings, "kpi") as conn, conn.transaction():
        results = take_snapshots(conn, snapshot_dates(clock.today()))
    today = max(r["as_of"] for r in results)
    return next(r["kpis"] for r in results if r["as_of"] == today and r["segment"] == "all")


def collection_rate(settings: Settings, days: int = 30) -> float | None:
    """What the asset-finance customers paid over the last ``days`` days for what fell due in them."""
    today = clock.today()
    with connect(settings, "demo") as conn:
        received, due = ledger_repository.collected_and_due(conn, today - timedelta(days=days), today)
    return received / due if due else None


def live_start(settings: Settings) -> datetime:
    """Where the live simulation starts its clock: the newest reading in the database (the history's
    end), so that it continues the same story and catches up to now at its speed; now when there is
    none, and never more than 30 days back (a demo restarted after a long pause)."""
    now = clock.utc_now()
    with connect(settings, "demo") as conn:
        newest = registry_repository.newest_reading(conn)
    if newest is None:
        return now
    return min(max(newest, now - timedelta(days=30)), now)


@dataclass
class Children:
    """The demo's processes (``paygo`` subcommands), each logging to a file of its own."""

    logs: Path
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def spawn(self, name: str, args: list[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = (self.logs / f"{name}.log").open("ab")
        # A session of its own: Ctrl-C reaches only the demo, which then stops children in order.
        proc = subprocess.Popen([sys.executable, "-m", "paygo.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        self.running.append((name, proc))

    def dead(self) -> list[str]:
        return [name for name, p in self.running if p.poll() is not None]

    def stop(self) -> list[str]:
        """SIGTERM to all in the order they started, then wait; returns those that had to be killed."""
        for _, p in self.running:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        killed = []
        for name, p in self.running:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                killed.append(name)
                p.kill()
                p.wait()
        return killed


METRICS_UNITS = 5  # more demo units, reporting with OpenPAYGO Metrics over HTTP (issue 17)


def with_metrics_units(settings: Settings, children: Children, sim_args: list[str], units: int) -> list[str]:
    """METRICS_UNITS more units (customers of the demo company, added once), the device API they
    report to, and the simulator's arguments with them: the ``units`` MQTT units stay as they are and
    the extra ones report with OpenPAYGO Metrics (hourly batches over HTTP, ``ra``, condensed)."""
    with connect(settings, "demo") as conn:
        missing = units + METRICS_UNITS - registry_repository.count_installed(conn)
        if missing > 0:
            now = clock.utc_now()
            demo_data.add_customers(conn, settings.secret_key, missing, random.Random(17), now - timedelta(days=40),
                                    now - timedelta(days=31))  # fmt: skip
        conn.commit()
    if missing > 0:
        provision_units(settings)  # the simulator reads every unit's login, though these never use theirs
    children.spawn("device-api", ["ingest", "device-api"])
    args = list(sim_args)
    args[args.index("--units") + 1] = str(units + METRICS_UNITS)
    return [*args, "--metrics-units", str(METRICS_UNITS)]
