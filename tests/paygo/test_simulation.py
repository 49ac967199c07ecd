"""``paygo sim run``: simulated units with fault scenarios, and the ground truth written for scoring."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from backoffice.config import Settings


def test_sim_run_command_writes_the_ground_truth(settings: Settings, tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    env = {**os.environ, "PAYGO_DATABASE_URL": settings.database_url, "PAYGO_ENVIRONMENT": "test",
           "PAYGO_MQTT_TOPIC_ROOT": settings.mqtt_topic_root}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "paygo.cli", "sim", "run", "--synthetic", "--no-device-login", "--units", "40",
         "--duration", "4", "--scenario-mix", "healthy=1,panel_covered=1,gsm_outage=1", "--truth", str(truth)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "most online 40" in done.stdout.replace("\n", " ")
    lines = list(csv.DictReader(truth.open()))
    assert len(lines) == 40 and {r["scenario"] for r in lines} == {"healthy", "panel_covered", "gsm_outage"}
    assert all((r["onset"] == "") == (r["scenario"] == "healthy") for r in lines)
