"""KPI snapshot from the live database at a million contracts (issues 24 and 28): ``paygo kpi snapshot``
end to end — the 2018 KPIs, portfolio quality, the loan tape, stored — against a baseline in the same run.

Loads once (binary COPY, never through the API) into a database of its own on the local stack and
keeps it between runs (``--reload`` loads again): ``bench/kpi_generate.py``'s portfolio (seed 7: units
acquired over four years, asset-finance schedules paid month by month with delays and stops,
flexible top-ups every few days, repairs, refunds) as products, customers, units, contracts and
ledger rows in minor units — about 39 ledger rows per contract.

Then runs ``paygo kpi snapshot --as-of 2024-06-30`` twice, each a fresh process (wall time and its own
peak VmHWM, bench/peak_memory.py):
  1. baseline: the snapshot code as it was before this work (``--baseline-ref``, taken from git into
     .paygo/bench/): the ledger exported to a CSV file, read back by Arrow, then the engine;
  2. new: the current code (binary COPY straight into the engine's arrays);
and checks that both stored the same snapshot (every figure of every segment, and the tape byte for byte).

    .venv/bin/python bench/kpi_snapshot_bench.py                      # 1,000,000 contracts
    .venv/bin/python bench/kpi_snapshot_bench.py --contracts 100000   # a quicker look (a database of its own)
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
AS_OF = "2024-06-30"
DB = "paygo_bench_kpi_snapshot"
BASELINE_REF = "fc39224"  # the branch point of issue 28 item 2: the export round trip
TYPES = ("deposit", "payment", "maintenance_unscheduled", "return")  # kpi_generate's type indexes
STATUSES = (b"expected", b"completed")
CHUNK_ROWS = 4_000_000


def load(url: str, admin: str, contracts: int, seed: int) -> int:
    """Load the portfolio into the database at ``url`` (connected as the superuser ``admin`` URL's role,
    so that foreign-key triggers can be off for the load)."""
    from callcentre_bench import copy_binary, fixed, pg_day, plain_indexes  # type: ignore[import-not-found]
    from kpi_generate import PRODUCTS_CSV, ledger_columns  # type: ignore[import-not-found]

    t0 = time.perf_counter()
    cols = ledger_columns(contracts, seed)
    print(f"  generated {len(cols['day']):,} ledger rows in {time.perf_counter() - t0:.0f} s", flush=True)
    products = list(csv.DictReader(io.StringIO(PRODUCTS_CSV)))
    names = sorted(p["product_type"] for p in products)  # kpi_generate's product indexes
    n = contracts
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # no foreign-key triggers during the load
        conn.execute("set maintenance_work_mem = '1GB'")
        dropped = plain_indexes(conn, ["ledger_entries", "contracts", "units", "customers"])
        for name, _ in dropped:
            conn.execute(f"drop index {name}")
        ids = {}
        for p in products:

            def minor(key: str, p: dict[str, str] = p) -> int | None:
                return int(Decimal(p[key]) * 100) if p[key] else None

            ids[p["product_type"]] = conn.execute(
                """insert into products (code, name, business_model, currency, hardware_cost, transport_cost,
                       import_tax, insurance_cost, installation_cost, lighting_global_certified, price_per_day,
                       price_to_own, contract_days, deposit_days)
                   values (%s, %s, %s, 'KES', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id""",
                (p["product_type"], p["product_type"], p["business_model"],
                 *(minor(k) or 0 for k in ("hardware_cost", "transport_cost", "import_tax", "insurance_cost",
                                           "installation_cost")),
                 p["lighting_global_certified"] == "true", minor("price_per_day"), minor("price_to_own"),
                 int(p["contract_days"]) if p["contract_days"] else None,
                 int(p["deposit_days"]) if p["deposit_days"] else None),
            ).fetchone()[0]  # type: ignore[index]  # fmt: skip
        product_id = np.array([ids[name] for name in names], dtype=np.int64)
        # each unit's product and first day (its contract's signing day)
        unit_product = np.zeros(n, dtype=np.int64)
        unit_product[cols["unit"]] = cols["product"]
        signed = np.full(n, 1 << 30, dtype=np.int64)
        np.minimum.at(signed, cols["unit"], cols["day"])
        key = np.arange(1, n + 1)
        copy_binary(conn, "customers", [("id", ">i8", key), ("name", "S8", fixed(b"C", key - 1, 7))])
        copy_binary(conn, "units", [("id", ">i8", key), ("serial", "S11", fixed(b"SN-R", key - 1, 7)),
                                    ("product_id", ">i8", product_id[unit_product])])  # fmt: skip
        copy_binary(conn, "contracts", [
            ("id", ">i8", key), ("account_number", "S8", fixed(b"R", key - 1, 7)), ("customer_id", ">i8", key),
            ("unit_id", ">i8", key), ("product_id", ">i8", product_id[unit_product]), ("currency", "S3",
            np.full(n, b"KES")), ("signed_on", ">i4", pg_day(signed)),
        ])  # fmt: skip
        for table in ("customers", "units", "contracts"):
            conn.execute(f"select setval('{table}_id_seq', %s)", (n,))
        t0 = time.perf_counter()
        total = len(cols["day"])
        for lo in range(0, total, CHUNK_ROWS):
            part = {k: v[lo : lo + CHUNK_ROWS] for k, v in cols.items()}
            for done in (0, 1):
                for t, type_name in enumerate(TYPES):
                    pick = (part["completed"] == done) & (part["type"] == t)
                    k = int(pick.sum())
                    if not k:
                        continue
                    status = STATUSES[done]
                    copy_binary(conn, "ledger_entries", [
                        ("contract_id", ">i8", part["unit"][pick] + 1),
                        ("entry_date", ">i4", pg_day(part["day"][pick])),
                        ("status", f"S{len(status)}", np.full(k, status)),
                        ("type", f"S{len(type_name)}", np.full(k, type_name.encode())),
                        ("amount", ">i8", part["amount"][pick] * 100), ("currency", "S3", np.full(k, b"KES")),
                    ])  # fmt: skip
            print(f"  ledger rows {min(total, lo + CHUNK_ROWS):,} / {total:,} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)  # fmt: skip
        t0 = time.perf_counter()
        for _, definition in dropped:
            conn.execute(definition)
        conn.execute("analyze")
        print(f"  indexes rebuilt and analysed in {time.perf_counter() - t0:.0f} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table bench_loaded (contracts bigint, ledger_rows bigint)")
        conn.execute("insert into bench_loaded values (%s, %s)", (n, total))
    return total


# --- the other reader measured: binary COPY (one protocol message per row, each handed to Python) ---

# One row of copy_ledger_binary: a field count, then each field's length and value.
LEDGER_COPY_ROW = np.dtype([
    ("fields", ">i2"),
    ("n0", ">i4"), ("contract", ">i8"), ("n1", ">i4"), ("day", ">i4"), ("n2", ">i4"), ("amount", ">i8"),
    ("n3", ">i4"), ("currency", ">i2"), ("n4", ">i4"), ("kind", ">i2"), ("n5", ">i4"), ("completed", "?"),
])  # fmt: skip
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_BLOCK = 1 << 23  # bytes of COPY data converted at a time


Bytes = bytes | bytearray | memoryview


def read_copy_rows(blocks: Iterable[Bytes], expected_rows: int) -> dict[str, npt.NDArray[Any]] | None:
    """The columns of a binary COPY of LEDGER_COPY_ROW rows, or None if the stream is not that."""
    from kpi.columns import Growing

    out = Growing(max(expected_rows, 1))
    pending: list[Bytes] = []
    size = 0
    started = False
    rest = b""

    def convert(data: bytes, final: bool) -> bytes | None:
        nonlocal started
        view = memoryview(data)
        if not started:
            if len(view) < 19 or bytes(view[:11]) != _COPY_SIGNATURE:
                return None
            view = view[19 + int.from_bytes(view[15:19], "big") :]
            started = True
        whole = len(view) // LEDGER_COPY_ROW.itemsize
        if final:  # the trailer (a field count of -1) is the last two bytes
            if bytes(view[-2:]) != b"\xff\xff":
                return None
            view = view[:-2]
            whole = len(view) // LEDGER_COPY_ROW.itemsize
            if whole * LEDGER_COPY_ROW.itemsize != len(view):
                return None
        rows = np.frombuffer(view, LEDGER_COPY_ROW, count=whole)
        widths = (8, 4, 8, 2, 2, 1)
        if not ((rows["fields"] == 6).all() and all((rows[f"n{i}"] == w).all() for i, w in enumerate(widths))):
            return None
        out.extend({name: rows[name] for name in out.cols})
        return bytes(view[whole * LEDGER_COPY_ROW.itemsize :])

    for block in blocks:
        pending.append(block)
        size += len(block)
        if size >= _COPY_BLOCK:
            left = convert(rest + b"".join(pending), final=False)
            if left is None:
                return None
            rest, pending, size = left, [], 0
    if convert(rest + b"".join(pending), final=True) is None:
        return None
    return out.take()


def copy_ledger_binary(
    conn: psycopg.Connection, as_of: date | None, currencies: Sequence[str], types: Sequence[str]
) -> Iterator[bytes | bytearray | memoryview]:
    """The ledger's rows as PostgreSQL binary COPY bytes (kpi.columns.LEDGER_COPY_ROW, fixed width):
    contract id, date, amount in minor units, 1 + the index of the currency in ``currencies`` and of
    the type in ``types`` (0: none of them), completed or not. The same rows as the CSV export:
    every expected row, completed rows dated up to ``as_of``. No order: the engine sorts by date."""
    query = sql.SQL(
        """copy (
            select e.contract_id, e.entry_date, e.amount,
                   coalesce(array_position({currencies}::text[], e.currency::text), 0)::int2,
                   coalesce(array_position({types}::text[], e.type), 0)::int2,
                   e.status = 'completed'
              from ledger_entries e
             where e.status = 'expected' or {as_of}::date is null or e.entry_date <= {as_of}::date
        ) to stdout (format binary)"""
    ).format(currencies=sql.Literal(list(currencies)), types=sql.Literal(list(types)), as_of=sql.Literal(as_of))
    with conn.cursor() as cur, cur.copy(query) as copy:
        yield from copy


def compare_readers(url: str) -> None:
    """The ledger read both ways (arrays per id range, as the snapshot does; binary COPY), timed."""
    from kpi import repository
    from kpi.columns import read_array_chunks
    from kpi.inputs import TYPES

    as_of = date.fromisoformat(AS_OF)
    with psycopg.connect(url) as conn:
        estimate = repository.ledger_rows_estimate(conn)
        t0 = time.perf_counter()
        bounds = repository.ledger_id_bounds(conn)
        assert bounds is not None
        step = 1 << 21
        arrays = read_array_chunks((repository.ledger_arrays(conn, (lo, lo + step), as_of, ["KES"], TYPES)
                                    for lo in range(bounds[0], bounds[1] + 1, step)), estimate)  # fmt: skip
        t1 = time.perf_counter()
        copied = read_copy_rows(copy_ledger_binary(conn, as_of, ["KES"], TYPES), estimate)
        t2 = time.perf_counter()
    assert arrays is not None and copied is not None and len(arrays["day"]) == len(copied["day"])
    print(
        f"\nreaders, the ledger alone ({len(arrays['day']):,} rows): binary arrays per id range {t1 - t0:.1f} s, "
        f"binary COPY {t2 - t1:.1f} s (load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])})"
    )


def loaded(url: str, contracts: int) -> int | None:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("select contracts, ledger_rows from bench_loaded").fetchone()
    except psycopg.Error:
        return None
    return int(row[1]) if row and row[0] == contracts else None


def baseline_source(ref: str) -> Path:
    """The packages the baseline imports (kpi, backoffice) as they were at ``ref``, from git."""
    out = ROOT / ".paygo" / "bench" / f"kpi-snapshot-baseline-{ref}"
    if not (out / "kpi" / "service.py").exists():
        out.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "kpi", "backoffice"], check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def child(which: str, source: str | None) -> None:
    """One ``paygo kpi snapshot`` in this process (the bench's child, under bench/peak_memory.py)."""
    if source:
        sys.path.insert(0, source)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    import kpi

    print(f"[{which}] kpi package: {Path(kpi.__file__).parent}", file=sys.stderr)
    sys.argv = ["paygo", "kpi", "snapshot", "--as-of", AS_OF]
    from paygo.cli import main as paygo

    paygo()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process on this machine so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(which: str, url: str, source: Path | None) -> tuple[float, float, float, float, str]:
    """(wall s, peak GB, the process's CPU s, its database sessions' CPU s, its log) of one snapshot.
    On a machine shared by busy neighbours the wall time is mostly waiting for a core: the CPU
    seconds say what the snapshot itself costs (the database's share sampled every 0.2 s)."""
    peak = ROOT / ".paygo" / "bench" / f"kpi-snapshot-{which}-peak.tmp"
    args = [sys.executable, str(ROOT / "bench" / "peak_memory.py"), str(peak), __file__, "--child", which]
    if source is not None:
        args += ["--source", str(source)]
    env = {**os.environ, "PAYGO_DATABASE_URL": url}
    db = url.rsplit("/", 1)[1]
    backends: dict[int, float] = {}
    start = time.perf_counter()
    with open(peak.with_suffix(".err"), "w+") as err, psycopg.connect(url, autocommit=True) as watch:
        child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=env)
        while child.poll() is None:
            pids = watch.execute(
                "select pid from pg_stat_activity where datname = %s and pid <> pg_backend_pid()", (db,)
            ).fetchall()
            for (pid,) in pids:
                backends[pid] = max(backends.get(pid, 0.0), _cpu_seconds(pid))
            time.sleep(0.2)
        wall = time.perf_counter() - start
        err.seek(0)
        log = err.read()
    if child.returncode != 0:
        raise SystemExit(f"{which} failed:\n{log}")
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = cpu.ru_utime + cpu.ru_stime - _CHILDREN_CPU[0]
    _CHILDREN_CPU[0] += own
    return wall, int(peak.read_text()) / 1e6, own, sum(backends.values()), log


_CHILDREN_CPU = [0.0]  # CPU seconds of the children already waited for


def stored(url: str) -> tuple[str, str, int]:
    """(a digest of every stored result, of the tape, the number of segments) of the as-of date."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select segment, result, distributions, units from kpi_snapshots where as_of = %s order by segment",
            (AS_OF,),
        ).fetchall()
        tape = conn.execute("select tape_gz from kpi_loan_tapes where as_of = %s", (AS_OF,)).fetchone()
    text = json.dumps([list(r) for r in rows], sort_keys=True, default=str)
    tape_digest = hashlib.sha256(gzip.decompress(bytes(tape[0]))).hexdigest() if tape else "none"
    return hashlib.sha256(text.encode()).hexdigest(), tape_digest, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reload", action="store_true", help="load the database again")
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="git revision of the baseline's code")
    parser.add_argument("--no-baseline", action="store_true", help="time the new code alone")
    parser.add_argument("--readers", action="store_true", help="also time the ledger read by binary COPY")
    parser.add_argument("--child", choices=("baseline", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.source)
        return
    sys.path.insert(0, str(ROOT))
    from kpi_bench import machine  # type: ignore[import-not-found]

    from backoffice.config import load_settings
    from devtools.postgres import admin_url, fresh_database, owner_url

    base = load_settings()
    db = DB if args.contracts == 1_000_000 else f"{DB}_{args.contracts}"
    url = owner_url(base, db)
    rows = None if args.reload else loaded(url, args.contracts)
    if rows is None:
        print(f"loading {args.contracts:,} contracts into {db} (kept for the next run; --reload to redo)", flush=True)
        t0 = time.perf_counter()
        url = fresh_database(base, db).database_url
        rows = load(url, admin_url(base).rsplit("/", 1)[0] + f"/{db}", args.contracts, args.seed)
        print(f"loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    with psycopg.connect(url) as conn:
        size = conn.execute("select pg_size_pretty(pg_total_relation_size('ledger_entries'))").fetchone()[0]  # type: ignore[index]
    print(f"machine: {machine()}")
    print(f"database {db}: {args.contracts:,} contracts, {rows:,} ledger rows ({size} with indexes); as of {AS_OF}")
    runs = [] if args.no_baseline else [("baseline", baseline_source(args.baseline_ref))]
    runs.append(("new", None))
    digests = {}
    for which, source in runs:
        load_avg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        wall, rss, cpu, db_cpu, log = run(which, url, source)
        after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        label = f"baseline ({args.baseline_ref}: CSV export, Arrow reader)" if which == "baseline" else "new"
        print(
            f"\n{label}: {wall:.1f} s wall, peak {rss:.2f} GB; CPU {cpu:.1f} s in the process + {db_cpu:.1f} s "
            f"in PostgreSQL (load average {load_avg} -> {after})"
        )
        for line in log.splitlines():
            if "kpi" in line and ("stored" in line or " s " in line or line.startswith("kpi:")):
                print(f"  {line}")
        digests[which] = stored(url)
    if args.readers:
        compare_readers(url)
    if "baseline" in digests:
        same = digests["baseline"] == digests["new"]
        print(f"\nsame snapshot stored by both ({digests['new'][2]} segments, results and tape): {same}")
        if not same:
            raise SystemExit("the new snapshot differs from the baseline's")


if __name__ == "__main__":
    main()
