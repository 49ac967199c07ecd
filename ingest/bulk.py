"""Telemetry written in bulk from column arrays (the simulator's backfill): binary COPY built in place
by numpy, with the same daily rollups and newest-reading rule as ``ingest.writer``'s row path.

The rollup here is numpy's reading of ``writer.write_readings``'s SQL (same low-charge threshold,
hours per report and merge); ``tests/ingest/test_bulk.py`` proves the two agree on generated readings.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg

from ingest.writer import COLUMNS, DAILY_MERGE, LATEST_COLUMNS, LATEST_MERGE, LOW_SOC, REPORT_HOURS

PG_EPOCH_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
DAILY_COLS = ("unit_id", "day", "energy_in_wh", "energy_out_wh", "min_batt_v", "max_batt_v", "hours_low_soc",
              "max_batt_temp_c", "reports")  # fmt: skip

Columns = dict[str, np.ndarray]


def binary_copy(columns: list[tuple[str, np.ndarray]], n: int) -> memoryview:
    """PostgreSQL's binary COPY format for fixed-width columns, built as one numpy record array.

    Each column is (a big-endian numpy type, the values); a text column is given as ``S<k>`` bytes
    of one length. NULLs are not supported (the backfill has none).
    """
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    for k, (kind, _) in enumerate(columns):
        fields += [(f"len{k}", ">i4"), (f"val{k}", kind)]
    dtype = np.dtype(fields)
    # Header (signature, flags, no extension), the rows written in place, and the trailer.
    out = np.empty(19 + n * dtype.itemsize + 2, np.uint8)
    out[:19] = np.frombuffer(b"PGCOPY\n\xff\r\n\x00" + bytes(8), np.uint8)
    out[-2:] = 0xFF  # -1 as a 16-bit field count: the end
    rows = out[19:-2].view(dtype)
    rows["nfields"] = len(columns)
    for k, (kind, values) in enumerate(columns):
        rows[f"len{k}"] = np.dtype(kind).itemsize
        rows[f"val{k}"] = values
    return memoryview(out.data)


def pg_ts(seconds: np.ndarray) -> np.ndarray:
    """Unix seconds as PostgreSQL's binary timestamp (microseconds since 2000-01-01)."""
    return (np.round(seconds * 1_000_000) - PG_EPOCH_US).astype(np.int64)


def _telemetry_payload(rows: Columns, firmware: str, columns: tuple[str, ...] = COLUMNS) -> memoryview:
    fw = firmware.encode()
    n = len(rows["unit_id"])
    types = {"unit_id": ">i8", "ts": ">i8", "seq": ">i8", "received_at": ">i8", "credit_s": ">i8", "locked": "?",
             "rssi": ">i2", "fw": f"S{len(fw)}"}  # fmt: skip
    values = {**rows, "ts": pg_ts(rows["ts"]), "received_at": pg_ts(rows["received_at"]), "fw": np.full(n, fw)}
    return binary_copy([(types.get(name, ">f4"), values[name]) for name in columns], n)


def write_columns(conn: psycopg.Connection, rows: Columns, firmware: str) -> None:
    """Readings given as columns (unit_id, ts and received_at in Unix seconds, and every measurement;
    no NULLs), in the caller's transaction, with their daily rollups."""
    with conn.cursor() as cur:
        with cur.copy(f"copy telemetry ({', '.join(COLUMNS)}) from stdin (format binary)") as cp:
            cp.write(_telemetry_payload(rows, firmware))
        _write_daily(cur, rows["unit_id"], rows["ts"], rows["batt_v"], rows["soc"], rows["batt_temp_c"],
                     rows["pv_wh"], rows["load_wh"])  # fmt: skip


def newest(latest: Columns | None, rows: Columns) -> Columns:
    """Each unit's newest reading so far (rows come in time order, so the last of a unit wins)."""
    merged = rows if latest is None else {k: np.concatenate([latest[k], rows[k]]) for k in rows}
    order = np.lexsort((merged["seq"], merged["ts"], merged["unit_id"]))
    last = order[np.r_[merged["unit_id"][order][1:] != merged["unit_id"][order][:-1], True]]
    return {k: v[last] for k, v in merged.items()}


def _write_daily(cur: psycopg.Cursor, unit_id: np.ndarray, ts_s: np.ndarray, batt_v: np.ndarray, soc: np.ndarray,
                 temp: np.ndarray, pv_wh: np.ndarray, load_wh: np.ndarray) -> None:  # fmt: skip
    """The day's rollups, as the ingest writer keeps them (same low-charge threshold and hours)."""
    day = (ts_s // 86400).astype(np.int64)
    keys, inv = np.unique(np.stack([unit_id, day]), axis=1, return_inverse=True)
    inv = inv.ravel()
    m = keys.shape[1]
    f32 = np.float32

    def reduce(fn: np.ufunc, values: np.ndarray, init: float) -> np.ndarray:
        out = np.full(m, init, np.float64)
        fn.at(out, inv, values.astype(f32).astype(np.float64))
        return out

    energy_in = np.bincount(inv, weights=pv_wh.astype(f32).astype(np.float64), minlength=m)
    energy_out = np.bincount(inv, weights=load_wh.astype(f32).astype(np.float64), minlength=m)
    low = np.bincount(inv, weights=(soc.astype(f32) < LOW_SOC).astype(float), minlength=m) * REPORT_HOURS
    reports = np.bincount(inv, minlength=m)
    pg_day = keys[1] - 10957  # days since 2000-01-01
    payload = binary_copy(
        [
            (">i8", keys[0]), (">i4", pg_day), (">f8", energy_in), (">f8", energy_out),
            (">f4", reduce(np.minimum, batt_v, np.inf)), (">f4", reduce(np.maximum, batt_v, -np.inf)),
            (">f4", low), (">f4", reduce(np.maximum, temp, -np.inf)), (">i4", reports),
        ],
        m,
    )  # fmt: skip
    # Merged like the ingest writer does, in case live readings of these days were already rolled up.
    cur.execute("create temp table if not exists daily_stage (like telemetry_daily) on commit delete rows")
    cur.execute("truncate daily_stage")  # emptied at commit, but a caller may write twice in one transaction
    with cur.copy(f"copy daily_stage ({', '.join(DAILY_COLS)}) from stdin (format binary)") as cp:
        cp.write(payload)
    cur.execute(f"insert into telemetry_daily as d select * from daily_stage {DAILY_MERGE}")


def write_latest(conn: psycopg.Connection, latest: Columns, firmware: str) -> None:
    """Each unit's newest backfilled reading, for the look-up pages (a newer live one is kept), in the
    caller's transaction."""
    cols = ", ".join(LATEST_COLUMNS)
    with conn.cursor() as cur:
        cur.execute("create temp table if not exists latest_stage (like unit_latest) on commit drop")
        cur.execute("truncate latest_stage")
        with cur.copy(f"copy latest_stage ({cols}) from stdin (format binary)") as cp:
            cp.write(_telemetry_payload(latest, firmware, LATEST_COLUMNS))
        cur.execute(f"insert into unit_latest ({cols}) select {cols} from latest_stage {LATEST_MERGE}")
