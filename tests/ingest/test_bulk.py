"""The bulk writer (the backfill's) and the row writer (live ingest) keep the same daily rollups and
newest reading: one definition, proven on generated readings rather than trusted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.registry import repository, service
from ingest import bulk, writer

T0 = datetime(2026, 3, 1, tzinfo=UTC)
FW = "sim-1.0"
MEASURES = ("batt_v", "batt_a", "soc", "batt_temp_c", "pv_v", "pv_w", "pv_wh", "load_wh")

reading = st.fixed_dictionaries(
    {
        "minute": st.integers(0, 3 * 24 * 60 - 1),  # three days, so readings fall on several days
        "batt_v": st.floats(10.0, 14.6),
        "batt_a": st.floats(-20, 20),
        "soc": st.floats(0, 1),  # across the low-charge threshold
        "batt_temp_c": st.floats(-5, 70),
        "pv_v": st.floats(0, 40),
        "pv_w": st.floats(0, 200),
        "pv_wh": st.floats(0, 70),
        "load_wh": st.floats(0, 30),
        "credit_s": st.integers(0, 10**7),
        "locked": st.booleans(),
        "rssi": st.integers(-120, -40),
    }
)


def _unit(conn: psycopg.Connection, serial: str) -> int:
    return service.register_unit(conn, "k", serial, _product(conn), installed_at=T0 - timedelta(days=1))


def _product(conn: psycopg.Connection) -> int:
    row = conn.execute("select id from products where code = 'B'").fetchone()
    if row:
        return int(row[0])
    return repository.insert_product(conn, code="B", name="b", business_model="flexible", currency="KES",
                                     price_per_day=3500)  # fmt: skip


def _daily(conn: psycopg.Connection, unit_id: int) -> list[tuple[object, ...]]:
    return conn.execute(
        """select day, energy_in_wh, energy_out_wh, min_batt_v, max_batt_v, hours_low_soc, max_batt_temp_c, reports
             from telemetry_daily where unit_id = %s order by day""",
        (unit_id,),
    ).fetchall()


def _latest(conn: psycopg.Connection, unit_id: int) -> tuple[object, ...] | None:
    return conn.execute(
        "select ts, seq, batt_v, soc, credit_s, locked, rssi, fw from unit_latest where unit_id = %s", (unit_id,)
    ).fetchone()


def _rows(unit_id: int, readings: list[dict[str, float]]) -> list[tuple[object, ...]]:
    return [
        (unit_id, T0 + timedelta(minutes=r["minute"]), r["minute"], T0 + timedelta(days=4),
         *(r[m] for m in MEASURES), r["credit_s"], r["locked"], r["rssi"], FW)
        for r in readings
    ]  # fmt: skip


def _columns(unit_id: int, readings: list[dict[str, float]]) -> bulk.Columns:
    ts = np.array([(T0 + timedelta(minutes=r["minute"])).timestamp() for r in readings])
    cols = {"unit_id": np.full(len(readings), unit_id, np.int64), "ts": ts, "received_at": ts + 2.0,
            "seq": np.array([r["minute"] for r in readings], np.int64)}  # fmt: skip
    for name in (*MEASURES, "credit_s", "locked", "rssi"):
        cols[name] = np.array([r[name] for r in readings])
    order = np.lexsort((cols["ts"], cols["unit_id"]))
    return {k: v[order] for k, v in cols.items()}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(reading, min_size=1, max_size=60, unique_by=lambda r: r["minute"]),
    st.integers(0, 60),
)
def test_bulk_and_row_writers_keep_the_same_rollups(
    conn: psycopg.Connection, readings: list[dict[str, float]], split: int
) -> None:
    # Two batches each (a late batch merges into days already rolled up), one unit per writer.
    first, late = readings[:split], readings[split:]
    with conn.transaction(force_rollback=True):
        live, backfilled = _unit(conn, "LIVE"), _unit(conn, "BULK")
        for batch in (first, late):
            if batch:
                writer.write_readings(conn, _rows(live, batch))
                bulk.write_columns(conn, _columns(backfilled, batch), FW)
                bulk.write_latest(conn, bulk.newest(None, _columns(backfilled, batch)), FW)
        by_row, by_bulk = _daily(conn, live), _daily(conn, backfilled)
        assert len(by_row) == len(by_bulk) == len({r["minute"] // 1440 for r in readings})
        for r, b in zip(by_row, by_bulk, strict=True):
            assert r[0] == b[0] and r[7] == b[7]  # the day, the number of reports
            assert np.allclose(np.array(r[1:7], float), np.array(b[1:7], float), rtol=1e-5, atol=1e-3), (r, b)
        assert _latest(conn, live) == _latest(conn, backfilled)
