"""The simulator's OpenPAYGO Metrics units against the real device API: hourly batches built by the
official device-side builder, kept through an outage (store-and-forward) and sent once the server is
reachable, tokens from the answer typed into the keypad, the server's base_url followed; and a small
Metrics fleet run on a fast clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import psycopg
import pytest

from backoffice import clock as platform_clock
from backoffice.config import Settings
from backoffice.credit.service import apply_payment
from firmware_sim.clock import SimClock
from firmware_sim.fleet import FleetStats
from firmware_sim.keypad import Keypad
from firmware_sim.metrics_device import MetricsConfig, MetricsDevice, run_metrics_fleet
from firmware_sim.unit import UnitSpec
from ingest.device_api import create_device_app
from protocol import Reading
from tests.support import count, free_port, lamp_contract, serve


def _readings(n: int, end: datetime) -> list[Reading]:
    return [Reading(seq=i, ts=end - timedelta(minutes=20 * (n - 1 - i)), batt_v=12.5 + i / 100, soc=0.6,
                    pv_wh=5.0, load_wh=2.0, credit_s=3600, locked=False, rssi=-80) for i in range(n)]  # fmt: skip


@pytest.mark.parametrize(("method", "condensed", "cbor"), [("ra", True, False), ("ca", True, True),
                                                           ("ta", False, True), ("da", False, False)])  # fmt: skip
def test_a_metrics_unit_stores_and_forwards_and_takes_its_tokens(
    settings: Settings, conn: psycopg.Connection, method: str, condensed: bool, cbor: bool
) -> None:
    contract, key, start = lamp_contract(conn, settings.secret_key, "SIM-M1", "Neema", installed_days_ago=5)
    apply_payment(conn, contract, 3_500 * 3, platform_clock.today(), settings.secret_key)
    conn.execute("""insert into metrics_state (unit_id, base_url, base_url_set_at)
                    select id, 'http://moved.example/m/', now() from units where serial = 'SIM-M1'""")
    conn.commit()
    stats = FleetStats()
    now = platform_clock.utc_now() - timedelta(minutes=2)
    unreachable = f"http://127.0.0.1:{free_port()}"
    cfg = MetricsConfig(unreachable, auth_method=method, condensed=condensed, cbor=cbor)
    device = MetricsDevice("SIM-M1", key, Keypad(key, start), cfg, unreachable)
    for r in _readings(3, now - timedelta(hours=1)):
        device.keep(r)

    async def flush(at: datetime) -> float:
        async with httpx.AsyncClient(timeout=5) as client:
            return await device.flush(client, at, 0.0, stats)

    assert asyncio.run(flush(now - timedelta(hours=1))) == 0.0  # the outage: nothing sent, nothing lost
    assert len(device.buffer) == 3 and count(conn, "select count(*) from telemetry") == 0
    for r in _readings(3, now):
        device.keep(r)
    with serve(create_device_app(settings), "the device API") as url:
        device.base_url = url
        credit = asyncio.run(flush(now))
    assert not device.buffer and stats.readings_sent == 6 and stats.messages_sent == 1
    assert count(conn, "select count(*) from telemetry") == 6
    assert credit == pytest.approx(3 * 86400)  # the waiting token, entered from the answer
    assert device.keypad is not None and device.keypad.count > 1
    assert device.moved_to == "http://moved.example/m/"  # followed from the next request on
    assert device.base_url == "http://moved.example/m"


def test_a_small_metrics_fleet_reports_on_a_fast_clock(settings: Settings, conn: psycopg.Connection) -> None:
    _, key, start = lamp_contract(conn, settings.secret_key, "SIM-M2", "Juma", installed_days_ago=5)
    conn.commit()
    spec = UnitSpec("SIM-M2", -0.1, 34.7, 50, 20.0, "lifepo4")
    # six simulated hours a second
    clock = SimClock(platform_clock.utc_now() - timedelta(days=1), speed=3600 * 6, wall=platform_clock.utc_now)
    stats = FleetStats()

    async def main(url: str) -> None:
        stop = asyncio.Event()
        cfg = MetricsConfig(url, auth_method="ra", condensed=True, cbor=True)
        task = asyncio.create_task(run_metrics_fleet([spec], {"SIM-M2": (key, start)}, clock, cfg, stop, stats))
        for _ in range(200):
            await asyncio.sleep(0.1)
            if stats.messages_sent >= 3:
                break
        stop.set()
        await task

    with serve(create_device_app(settings), "the device API") as url:
        asyncio.run(main(url))
    assert stats.messages_sent >= 3, stats
    assert count(conn, "select count(*) from telemetry") == stats.readings_sent > 0
    assert count(conn, "select count(*) from ingest_rejects") == 0
