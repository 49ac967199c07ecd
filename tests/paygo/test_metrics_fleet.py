"""``paygo sim run --metrics-units N``: a mixed fleet, some units over MQTT and some reporting with
OpenPAYGO Metrics over HTTP to the device API, whose readings land in the same telemetry tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from backoffice.config import Settings
from devtools import demo_data
from ingest.device_api import create_device_app
from paygo import demo as orchestration
from tests.support import count, serve


def test_sim_run_with_metrics_units(settings: Settings, conn: psycopg.Connection) -> None:
    demo_data.seed(conn, settings.secret_key, customers=6)
    conn.commit()
    metrics_serials = [s for (s,) in conn.execute(
        "select serial from units where state = 'installed' order by id")][-2:]  # fmt: skip
    conn.rollback()
    with serve(create_device_app(settings), "the device API") as url:
        env = {**os.environ, "PAYGO_DATABASE_URL": settings.database_url, "PAYGO_ENVIRONMENT": "test",
               "PAYGO_MQTT_TOPIC_ROOT": settings.mqtt_topic_root,
               "PAYGO_DEVICE_API_PORT": url.rsplit(":", 1)[1]}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "paygo.cli", "sim", "run", "--units", "6", "--metrics-units", "2",
             "--no-device-login", "--duration", "8", "--speed", "20000", "--start-days-ago", "3",
             "--metrics-cbor", "--metrics-auth", "ca"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    per_unit = "select u.serial, count(*) from telemetry t join units u on u.id = t.unit_id group by 1"
    rows = dict(conn.execute(per_unit).fetchall())
    assert set(rows) >= set(metrics_serials) and all(rows[s] > 0 for s in metrics_serials), rows
    methods = conn.execute("select distinct last_auth_method from metrics_state").fetchall()
    assert methods == [("ca",)]
    assert conn.execute("select count(*) from ingest_rejects").fetchone() == (0,)


def test_the_demo_adds_its_metrics_units_once(
    settings: Settings, conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paygo demo's hook: a few more units for Metrics (the MQTT units stay as many as asked)."""
    demo_data.seed(conn, settings.secret_key, customers=6)
    conn.commit()
    provisioned: list[int] = []
    monkeypatch.setattr(orchestration, "provision_units", lambda s: provisioned.append(1))  # not the shared broker

    class Spawned(orchestration.Children):
        def spawn(self, name: str, args: list[str]) -> None:
            self.running.append((name, args))  # type: ignore[arg-type]

    children = Spawned(tmp_path)
    sim = ["sim", "run", "--units", "6", "--speed", "60", "--platform-pay"]
    args = orchestration.with_metrics_units(settings, children, sim, 6)
    n = orchestration.METRICS_UNITS
    assert args == ["sim", "run", "--units", str(6 + n), "--speed", "60", "--platform-pay", "--metrics-units", str(n)]
    assert [name for name, _ in children.running] == ["device-api"] and provisioned == [1]
    assert count(conn, "select count(*) from units where state = 'installed'") == 6 + n
    orchestration.with_metrics_units(settings, children, sim, 6)  # a second demo run adds none
    assert count(conn, "select count(*) from units where state = 'installed'") == 6 + n and provisioned == [1]
