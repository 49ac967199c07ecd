"""Scale drain (issue 24): a backlog of full readings drained while the ingest workers are scaled
4 -> 1 -> 3, two of them killed with SIGKILL in the middle and one stopped (SIGTERM) as an autoscaler
would; then every reading is counted: lost, duplicated (rows or daily rollups counted twice).

The baseline is the readings sent: the run passes only with 0 lost and 0 duplicated.

    .venv/bin/python bench/scale_drain.py [--readings 200000] [--units 200] [--slots 8] [--lease 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import psutil
import psycopg

from backoffice.config import load_settings
from backoffice.db import share_clock
from devtools.scale_drain import drain
from devtools.stack import drop_database, fresh_database

DB = "paygo_bench_scale"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--lease", type=float, default=4.0, help="lease seconds (production default: 30)")
    args = parser.parse_args()
    settings = load_settings().model_copy(update={"ingest_slots": args.slots})
    bench = fresh_database(settings, DB)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "  # noqa: T201
          f"{psutil.virtual_memory().total / 2**30:.1f} GiB; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{args.readings:,} readings from {args.units} units, {args.slots} slots, leases of {args.lease:g}s")  # noqa: T201
    try:
        with psycopg.connect(bench.database_url) as conn:
            share_clock(conn)
            result = drain(bench, conn, args.readings, args.units, args.lease, say=print, timeout=1800)
    finally:
        drop_database(settings, DB)
    print(
        f"sent {result.readings:,}  stored {result.stored:,}  distinct {result.distinct:,}  "  # noqa: T201
        f"counted in daily rollups {result.daily_reports:,}  dead letters {result.rejects:,}"
    )
    print(
        f"lost {result.lost}  duplicated {result.duplicated}  in {result.seconds:.1f}s "  # noqa: T201
        f"({result.readings / result.seconds:,.0f} readings/s over the whole run)"
    )
    return 0 if result.lost == 0 and result.duplicated == 0 and result.rejects == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
