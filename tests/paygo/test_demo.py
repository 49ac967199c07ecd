"""The walking skeleton end to end: `paygo demo` on a stack of its own, telemetry arriving, Ctrl-C
stopping everything it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from backoffice.config import load_settings
from backoffice.db import share_clock
from devtools.stack import Stack
from tests.support import free_port, wait_for, wait_for_port
from tests.support.staff import login as staff_login


def _telemetry_rows(port: int, live: bool = True) -> int:
    """Readings in the demo's database: those received live (the backfilled history was received
    in the past), or all of them."""
    recent = " where received_at > paygo_now() - interval '10 minutes'"
    sql = "select count(*) from telemetry" + (recent if live else "")
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="paygo", dbname="paygo", connect_timeout=2) as c:
            share_clock(c)  # received_at is on the platform's clock (PAYGO_NOW), and so is paygo_now()
            row = c.execute(sql).fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return 0


@pytest.mark.slow
def test_demo_shows_telemetry_arriving_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "paygo-home"
    ports = {name: free_port() for name in ("PG", "MQTT", "REDIS", "API", "DEVICE_MQTT", "DEVICE_API")}
    env = {**os.environ, "PAYGO_HOME": str(home), **{f"PAYGO_{k}_PORT": str(v) for k, v in ports.items()}}
    demo = subprocess.Popen(
        [sys.executable, "-m", "paygo.cli", "demo", "--units", "12"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert demo.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or []), daemon=True)
    reader.start()
    try:
        # The promise: rows within 60 seconds (the units resume where the history ended, one
        # reporting interval ago, and first send that interval's reading).
        wait_for(lambda: _telemetry_rows(ports["PG"]) > 0, timeout=60, what="a telemetry row")
        rows = _telemetry_rows(ports["PG"])
        assert rows > 0, "no telemetry row within 60 s"
        # Rows keep growing on the real clock (12 units every 20 minutes: one every 100 s on average).
        wait_for(lambda: _telemetry_rows(ports["PG"]) > rows, timeout=600, what="more telemetry rows")
        assert _telemetry_rows(ports["PG"]) > rows
        wait_for_port(ports["API"], timeout=60, what="the demo's web app")
        # Before the live run, 60 days of history (12 units x 72 readings a day, once installed).
        assert _telemetry_rows(ports["PG"], live=False) - _telemetry_rows(ports["PG"]) > 12 * 72
        # The demo prints a login per role; the admin's opens every page.
        wait_for(lambda: any("demo-admin" in line for line in lines), timeout=30, what="the demo's logins")
        login = re.search(r"log in as demo-admin with password (\S+)", "".join(lines))
        assert login, "".join(lines)
        web = httpx.Client(base_url=f"http://127.0.0.1:{ports['API']}", timeout=10)
        assert httpx.get(f"http://127.0.0.1:{ports['API']}/", timeout=10).status_code == 303  # not logged in
        assert staff_login(web, "demo-admin", login.group(1)).status_code == 303
        page = web.get("/")
        assert page.status_code == 200 and "SHS000001" in page.text
        kpi = web.get("/kpi")
        assert kpi.status_code == 200 and "Portfolio KPIs" in kpi.text and "No KPI snapshot yet" not in kpi.text
        assert web.get("/payments").status_code == 200
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 5  # ingest worker, API server, simulated units, delivery, payments
        # The simulated units log in as themselves on the broker's device listener.
        device_links = [c for p in children for c in p.net_connections(kind="tcp")
                        if c.raddr and c.raddr.port == ports["DEVICE_MQTT"]]  # fmt: skip
        assert len(device_links) >= 12
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=90)
        reader.join(10)
        out = "".join(lines)
    assert demo.returncode == 0, out
    assert "stopped" in out

    settings = load_settings(home=home, pg_port=ports["PG"], mqtt_port=ports["MQTT"], redis_port=ports["REDIS"])
    assert {s.state for s in Stack(settings).status()} == {"stopped"}
    servers = [
        p.pid
        for p in psutil.process_iter(["cmdline", "status"])
        if p.info["status"] != psutil.STATUS_ZOMBIE and str(home) in " ".join(p.info["cmdline"] or [])
    ]
    assert servers == []
    for name, port in ports.items():  # redis renames its process, so look at the ports too
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"{name} port {port} still answers"
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
