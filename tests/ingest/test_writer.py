from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from backoffice import clock
from backoffice.registry import repository, service
from ingest import writer


def _row(unit_id: int, ts: datetime, seq: int, soc: float) -> tuple[object, ...]:
    return (
        unit_id,
        ts,
        seq,
        clock.utc_now(),
        12.8,
        -0.2,
        soc,
        30.0,
        17.0,
        20.0,
        5.0,
        2.0,
        3600,
        False,
        -70,
        "1.0",
    )


def test_resent_readings_add_nothing_and_late_readings_do_not_overwrite_latest(
    conn: psycopg.Connection,
) -> None:
    product = repository.insert_product(
        conn, code="P", name="p", business_model="flexible", currency="KES", price_per_day=3500
    )
    unit = service.register_unit(conn, "k", "S1", product, installed_at=datetime(2024, 1, 1, tzinfo=UTC))
    t = clock.utc_now() - timedelta(hours=5)
    first = [_row(unit, t + timedelta(minutes=20 * i), i, 0.5 + i / 100) for i in range(1, 11)]
    assert writer.write_readings(conn, first) == 10
    conn.commit()
    # The same readings again, mixed with two new ones and one duplicate inside the batch.
    again = first[::-1] + [_row(unit, t + timedelta(minutes=220), 11, 0.9)] * 2
    assert writer.write_readings(conn, again) == 1
    conn.commit()
    assert conn.execute("select count(*) from telemetry").fetchone() == (11,)
    assert conn.execute("select seq, soc from unit_latest").fetchone() == (11, 0.9)
    # A reading days late is stored but the newest stays the newest.
    assert writer.write_readings(conn, [_row(unit, t - timedelta(days=4), 0, 0.1)]) == 1
    assert conn.execute("select seq from unit_latest").fetchone() == (11,)
    # The daily rollup counted every reading once, the late one on its own day.
    days = conn.execute(
        "select day, reports, energy_in_wh, energy_out_wh, min_batt_v, hours_low_soc from telemetry_daily order by day"
    ).fetchall()
    assert sum(d[1] for d in days) == 12
    late_day = (t - timedelta(days=4)).date()
    assert days[0][0] == late_day and days[0][1] == 1 and days[0][5] == pytest.approx(1 / 3)  # soc 0.1: low
    assert sum(d[2] for d in days) == pytest.approx(12 * 5.0) and sum(d[3] for d in days) == pytest.approx(12 * 2.0)
    assert all(d[4] == pytest.approx(12.8) for d in days)
    # Binary COPY kept every column's value and type.
    stored = conn.execute("select batt_v, batt_a, credit_s, locked, rssi, fw from telemetry where seq = 3").fetchone()
    assert stored is not None
    assert stored[:2] == pytest.approx((12.8, -0.2), abs=1e-6)  # float4 columns
    assert stored[2:] == (3600, False, -70, "1.0")
