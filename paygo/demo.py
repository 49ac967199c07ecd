"""The demo's orchestration: a seeded company with a history, unit credentials on the broker, a KPI
snapshot, and the platform's processes run as children that stop in order."""

from __future__ import annotations

import random
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.db import connect
from backoffice.devices import broker
from backoffice.devices import service as devices
from backoffice.migrate import migrate
from backoffice.registry.repository import count_installed
from backoffice.staff import repository as staff_repository
from backoffice.staff import service as staff
from backoffice.staff.schemas import ROLES
from devtools import demo_data
from firmware_sim import scenarios
from kpi.service import take_snapshots
from paygo.backfill import Result, backfill

HISTORY_DAYS = 60
DEMO = Actor("demo")


def prepare_database(settings: Settings, units: int) -> bool:
    """Migrate, and seed the demo company into an empty database; True when it was seeded now."""
    with connect(settings, "demo", autocommit=True) as conn:
        migrate(conn)
    with connect(settings, "demo") as conn:
        seeded = demo_data.seed(conn, settings.secret_key, units)
        conn.commit()
    return bool(seeded)


def write_history(settings: Settings, units: int) -> tuple[Result, Path]:
    """Two months of history before the live simulation's first day (which starts 30 days back), with
    the default scenario mix, so charts, alerts and KPIs have a past; the truth goes to a file."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
    with connect(settings, "backfill", autocommit=True) as conn:
        mix = scenarios.parse_mix(scenarios.DEFAULT_MIX)
        result, sim = backfill(conn, settings.secret_key, units, HISTORY_DAYS, end=end, mix=mix,
                               connect=lambda: connect(settings, "backfill", autocommit=True))  # fmt: skip
    truth = settings.home_dir / "demo-truth.csv"
    scenarios.write_truth(truth, sim.serials, sim.assignment)
    return result, truth


def provision_units(settings: Settings) -> None:
    """Every unit gets its MQTT login (the simulated units log in as themselves) and the broker knows it."""
    with connect(settings, "devices") as conn, conn.transaction():
        devices.provision(conn, settings.secret_key)
        devices.write_password_file(conn, settings.device_password_file)
    broker.reload(settings)


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


def snapshot_kpis(settings: Settings) -> int:
    """Yesterday's KPI snapshot (for the KPI page); returns the portfolio's size."""
    with connect(settings, "kpi") as conn, conn.transaction():
        kpis = take_snapshots(conn, [datetime.now(UTC).date() - timedelta(days=1)])[0]["kpis"]
    return int(kpis["portfolio_size"])


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
        missing = units + METRICS_UNITS - count_installed(conn)
        if missing > 0:
            now = datetime.now(UTC)
            demo_data.add_customers(conn, settings.secret_key, missing, random.Random(17), now - timedelta(days=40),
                                    now - timedelta(days=31))  # fmt: skip
        conn.commit()
    if missing > 0:
        provision_units(settings)  # the simulator reads every unit's login, though these never use theirs
    children.spawn("device-api", ["ingest", "device-api"])
    args = list(sim_args)
    args[args.index("--units") + 1] = str(units + METRICS_UNITS)
    return [*args, "--metrics-units", str(METRICS_UNITS)]
