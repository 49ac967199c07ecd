"""History backfill into the real database: readings, rollups, payments and tokens that agree."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from openpaygo import decode_token

from backoffice import clock, crypto
from backoffice.config import Settings
from devtools import demo_data
from paygo.backfill import BackfillError, backfill
from tests.support.clock import child_env
from tests.support.money import MONEY_NOW

pytestmark = pytest.mark.clock(MONEY_NOW)

END = datetime(2026, 6, 1, tzinfo=UTC)


def test_backfill_writes_a_consistent_history(settings: Settings, conn: psycopg.Connection) -> None:
    conn.autocommit = True
    with conn.transaction():
        demo_data.seed(conn, settings.secret_key, customers=6)
    mix = {"healthy": 1.0, "gsm_outage": 1.0, "migrates": 1.0}
    result, sim = backfill(conn, settings.secret_key, units=10, days=6, end=END, seed=4, mix=mix,
                           connect=lambda: psycopg.connect(settings.database_url, autocommit=True))  # fmt: skip
    assert result.units == 10  # 6 seeded, 4 more demo customers made
    start = END - timedelta(days=6)

    # Every unit's readings: seq 1, 2, 3 ... in time order, 72 a day once installed, none after a
    # unit went silent for good, none outside the window.
    rows = conn.execute(
        """select u.serial, array_agg(t.seq order by t.ts), min(t.ts), max(t.ts), count(*),
                  max(extract(epoch from t.received_at - t.ts))
             from telemetry t join units u on u.id = t.unit_id group by 1"""
    ).fetchall()
    assert rows and sum(r[4] for r in rows) == result.readings
    a = sim.assignment
    for serial, seqs, first, last, count, delay in rows:
        i = sim.serials.index(serial)
        assert seqs == sorted(seqs) and len(set(seqs)) == count
        assert start < first and last <= END
        installed = conn.execute("select installed_at from units where serial = %s", (serial,)).fetchone()[0]
        assert first >= installed
        if not a.mask("migrates")[i] and installed < start:  # the whole window, outages included
            assert count == 6 * 72
        if a.mask("migrates")[i]:
            assert last.timestamp() < a.onset[i]
        if a.mask("gsm_outage")[i] and a.onset[i] < END.timestamp() - 86400:
            assert delay > 3600  # readings that waited out the outage arrived late
    # The look-up pages see each unit's newest reading.
    assert conn.execute(
        """select count(*) from unit_latest l
             join (select unit_id, max(ts) ts from telemetry group by 1) t using (unit_id) where t.ts = l.ts"""
    ).fetchone()[0] == len(rows)
    # The rollups are those the ingest writer would have made from the same rows.
    expected = conn.execute(
        """select unit_id, (ts at time zone 'UTC')::date, sum(pv_wh), sum(load_wh), min(batt_v), max(batt_v),
                  count(*) filter (where soc < 0.2) / 3.0, max(batt_temp_c), count(*)
             from telemetry group by 1, 2 order by 1, 2"""
    ).fetchall()
    got = conn.execute(
        """select unit_id, day, energy_in_wh, energy_out_wh, min_batt_v, max_batt_v, hours_low_soc,
                  max_batt_temp_c, reports from telemetry_daily order by 1, 2"""
    ).fetchall()
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g[:2] == e[:2] and g[8] == e[8]
        assert np.allclose(np.array(g[2:8], float), np.array(e[2:8], float), rtol=1e-5, atol=1e-3)

    # Payments went through the credit service: ledger rows in the window, tokens that decode with
    # the unit's own key, and their deliveries kept as history (nothing waits to be sent).
    paid = conn.execute(
        "select count(*) from ledger_entries where status = 'completed' and entry_date >= %s", (start.date(),)
    ).fetchone()[0]
    assert result.payments > 0 and paid >= 1
    waiting = conn.execute(
        """select count(*) filter (where o.state = 'pending'), count(*) filter (where o.state = 'history')
             from outbox o join tokens t on t.id = o.token_id where t.created_at < %s""",
        (END,),
    ).fetchone()
    assert waiting[0] == 0 and waiting[1] >= 2 * result.tokens
    token = conn.execute(
        """select t.token, t.count, t.value_days, t.created_at, u.openpaygo_key_enc, u.starting_code
             from tokens t join units u on u.id = t.unit_id
            where t.created_at >= %s and t.created_at < %s and t.token_type = 'add_time' order by t.id limit 1""",
        (start, END),
    ).fetchone()
    assert token is not None  # dated when it was paid, not today
    base = max(token[1] - 10, 1)  # a device some tokens behind
    value, _, count, _ = decode_token(token=token[0], secret_key=crypto.decrypt(settings.secret_key, token[4]),
                                      count=base, used_counts=[base], starting_code=token[5])  # fmt: skip
    assert value == token[2] and count == token[1]

    # The same window again would double the history: refused, naming what to do.
    with pytest.raises(BackfillError, match="already lie between"):
        backfill(conn, settings.secret_key, units=10, days=6, end=END, seed=4)


def test_backfill_command_shows_progress_and_writes_the_truth(settings: Settings, tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    # The command runs on this test's pinned clock (time-machine does not cross into it: PAYGO_NOW does).
    env = child_env({"PAYGO_DATABASE_URL": settings.database_url, "PAYGO_ENVIRONMENT": "test", "PATH": "/usr/bin:/bin"})
    done = subprocess.run(
        [sys.executable, "-m", "paygo.cli", "sim", "backfill", "--units", "5", "--days", "2", "--end",
         "2026-03-01", "--scenario-mix", "healthy=1,tampered=1", "--truth", str(truth)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "simulated days" in done.stdout and "readings/s" in done.stdout
    lines = truth.read_text().splitlines()
    assert lines[0] == "serial,scenario,onset,detail" and len(lines) == 6
    assert {line.split(",")[1] for line in lines[1:]} <= {"healthy", "tampered"}
    bad = subprocess.run([sys.executable, "-m", "paygo.cli", "sim", "backfill", "--scenario-mix", "dusty=1"],
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "unknown scenario 'dusty'" in bad.stderr


def test_backfill_at_another_interval_in_hourly_batches(settings: Settings, conn: psycopg.Connection) -> None:
    """Units reporting every hour and sending their readings in hourly batches (OpenPAYGO Metrics
    units): 24 readings a day each, every one received at its unit's next batch (within the hour,
    at the same minute of every hour for one unit)."""
    conn.autocommit = True
    with conn.transaction():
        demo_data.seed(conn, settings.secret_key, customers=4)
    end = clock.utc_now().replace(hour=0, minute=0, second=0, microsecond=0)  # the demo units are installed by then
    result, _ = backfill(conn, settings.secret_key, units=4, days=3, end=end, seed=5,
                         interval=timedelta(hours=1), batch=timedelta(hours=1))  # fmt: skip
    rows = conn.execute(
        """select unit_id, (ts at time zone 'UTC')::date, count(*),
                  min(extract(epoch from received_at - ts)), max(extract(epoch from received_at - ts)),
                  count(distinct extract(minute from received_at))
             from telemetry where ts >= %s group by 1, 2""",
        (end - timedelta(days=2),),
    ).fetchall()
    assert rows and result.readings > 0
    for _unit, _day, readings, least, most, minutes in rows:
        assert readings == 24
        assert 0 < least and most <= 3600 + 2
        assert minutes == 1  # one batch a hour, at the unit's own phase
