"""Readings of a unit written as ingest writes them (telemetry, the daily rollup and unit_latest)."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from ingest import writer


def report_every_20_minutes(conn: psycopg.Connection, unit_id: int, end: datetime, days: int) -> None:
    """``days`` of readings up to ``end`` (the last one exactly at ``end``), with a daily swing of
    battery voltage and charge; the newest one is made recognisable: 13.37 V and 87 %."""
    writer.ensure_partitions(conn, end - timedelta(days=days + 7), end + timedelta(days=7))
    n = days * 72
    rows = []
    for i in range(n):
        ts = end - timedelta(minutes=20 * (n - 1 - i))
        hour = ts.hour + ts.minute / 60
        sun = max(0.0, 1 - abs(hour - 12) / 6)
        v, soc = 12.4 + 0.8 * sun, 0.5 + 0.4 * sun
        if i == n - 1:
            v, soc = 13.37, 0.87
        rows.append((unit_id, ts, i, ts, v, None, soc, 30.0, None, 40.0 * sun, 15.0 * sun, 2.0, 86_400 * 5, False,
                     -70, "1.0"))  # fmt: skip
    writer.write_readings(conn, rows)
