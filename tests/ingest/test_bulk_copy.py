"""PostgreSQL's binary COPY format as ``ingest.bulk`` writes it from numpy columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from ingest import bulk

END = datetime(2026, 6, 1, tzinfo=UTC)


def test_binary_copy_round_trips_through_postgres(conn: psycopg.Connection) -> None:
    conn.execute("create temp table t (a bigint, b real, c boolean, d smallint, e text, f timestamptz)")
    when = np.array([END.timestamp(), END.timestamp() + 1.5])
    text = np.array([b"abc", b"xyz"])
    payload = bulk.binary_copy([(">i8", np.array([1, -2])), (">f4", np.array([0.5, 12.25])),
                                ("?", np.array([True, False])), (">i2", np.array([-90, 7])), ("S3", text),
                                (">i8", bulk.pg_ts(when))], 2)  # fmt: skip
    with conn.cursor() as cur, cur.copy("copy t from stdin (format binary)") as cp:
        cp.write(payload)
    assert conn.execute("select * from t order by a").fetchall() == [
        (-2, 12.25, False, 7, "xyz", END + timedelta(seconds=1.5)),
        (1, 0.5, True, -90, "abc", END),
    ]
