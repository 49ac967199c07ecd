"""Restore drill with RPO and RTO (issue 23): pgBackRest point-in-time recovery checked against what the
database held at the chosen instant.

    .venv/bin/python bench/restore_drill.py [--units 20] [--days 30]

On the HA stack (started if need be: ``paygo stack up --ha``), in a database of its own (paygo_drill):

1. migrate, take a full backup (``paygo backup run``);
2. write a history with ``paygo sim backfill`` (readings, payments, ledger rows, tokens; each simulated
   day committed on its own) while a sampler reads, every 0.2 s in one snapshot, the server's clock,
   the ledger's completed rows and total, the tokens, the payments and the telemetry rows;
3. RPO: at the instant L the history ends, "all three members are lost": restore the archive as it
   stands (no WAL switch forced) to its end, and find the newest sample the restored database equals:
   L minus that sample's instant is what a loss of the whole cluster at L would have cost;
4. PITR: archive until now, then restore to an instant T in the middle of the history (between two
   equal samples, so no commit straddles it) into a fresh data directory and compare every figure with
   the sample taken at T. RTO = restore of the files + WAL replay + promotion until it answers.

Each restored server runs on a port of its own beside the cluster and is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg

from backoffice.config import load_settings
from backoffice.migrate import migrate
from devtools.ha.restore import Restored, restore
from devtools.ha.stack import HAStack
from devtools.postgres import OWNER

DB = "paygo_drill"

# What the drill compares. The server's clock_timestamp(), not paygo_now(): recovery targets are
# the server's own commit timestamps.
FIGURES = {
    "ledger rows (completed)": "select count(*) from ledger_entries where status = 'completed'",
    "ledger total (minor units)": "select coalesce(sum(amount), 0) from ledger_entries where status = 'completed'",
    "tokens": "select count(*) from tokens",
    "highest token count": "select coalesce(max(count), 0) from tokens",
    "payments": "select count(*) from payment_inbox",
    "telemetry rows": "select count(*) from telemetry",
}


@dataclass
class Sample:
    at: datetime
    mono: float
    figures: tuple[int, ...]


def read_figures(conn: psycopg.Connection) -> tuple[datetime, tuple[int, ...]]:
    """The server's instant and every figure, from one snapshot."""
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read")
        row = conn.execute("select clock_timestamp()").fetchone()
        assert row is not None
        figures = []
        for sql in FIGURES.values():
            r = conn.execute(sql).fetchone()
            figures.append(int(r[0]) if r else 0)
    return row[0], tuple(figures)


def sampler(url: str, samples: list[Sample], stop: threading.Event) -> None:
    with psycopg.connect(url) as conn:
        while not stop.is_set():
            at, figures = read_figures(conn)
            samples.append(Sample(at, time.monotonic(), figures))
            stop.wait(0.2)


def restored_figures(r: Restored) -> tuple[int, ...]:
    with psycopg.connect(r.url(DB)) as conn:
        return read_figures(conn)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=20)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()

    settings = load_settings(environment="test")
    stack = HAStack(settings)
    stack.up()
    with psycopg.connect(stack.ports.database_url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {DB} with (force)")
        admin.execute(f"create database {DB} owner {OWNER}")
    url = stack.ports.database_url(DB, user=OWNER)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    t = time.monotonic()
    b = stack.backup.run_backup("full")
    print(f"full backup {b.label}: {b.size / 1e6:.1f} MB in {time.monotonic() - t:.1f} s", flush=True)

    samples: list[Sample] = []
    stop = threading.Event()
    thread = threading.Thread(target=sampler, args=(url, samples, stop), daemon=True)
    thread.start()
    env = {**os.environ, "PAYGO_ENVIRONMENT": "test", "PAYGO_DATABASE_URL": url, "PAYGO_LOG_LEVEL": "WARNING"}
    backfill = ["sim", "backfill", "--units", str(args.units), "--days", str(args.days), "--seed", "3"]
    subprocess.run([sys.executable, "-m", "paygo.cli", *backfill], env=env, check=True, stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    stop.set()
    thread.join(30)
    loss_at = samples[-1]
    print(f"history written: {len(samples)} samples, last {dict(zip(FIGURES, loss_at.figures, strict=True))}")

    drill = stack.dir / "drill"
    shutil.rmtree(drill, ignore_errors=True)
    drill.mkdir(parents=True)
    base = stack.ports.base

    # RPO: the archive as it stands at L, replayed to its end.
    latest = restore(stack.backup, drill / "latest", None, base + 451)
    try:
        got = restored_figures(latest)
    finally:
        latest.stop()
    equal = [s for s in samples if s.figures == got]
    if equal:
        rpo = max(0.0, loss_at.mono - equal[-1].mono)
        rpo_text = f"{rpo:.1f} s (the archive held the database as of {equal[-1].at:%H:%M:%S.%f})"
    else:
        rpo_text = f"not found among the samples (restored {got})"

    # PITR to an instant in the middle of the history, between two equal samples.
    mid = len(samples) // 2
    pairs = [(i, samples[i], samples[i + 1]) for i in range(len(samples) - 1)
             if samples[i].figures == samples[i + 1].figures and samples[i].figures[-1] > 0]  # fmt: skip
    if not pairs:
        raise SystemExit("no quiet instant in the history to restore to; give it more --days")
    _, before, after = min(pairs, key=lambda p: abs(p[0] - mid))
    target = before.at + (after.at - before.at) / 2
    stack.backup.archive_until_now()
    r = restore(stack.backup, drill / "pitr", target, base + 452)
    try:
        got = restored_figures(r)
    finally:
        r.stop()
    print()
    print(f"point-in-time restore to {target.isoformat()} (newest backup before it, then archived WAL)")
    print(f"{'figure':<28} {'source at T':>14} {'restored':>14}  ok")
    ok = True
    for name, want, have in zip(FIGURES, before.figures, got, strict=True):
        ok &= want == have
        print(f"{name:<28} {want:>14,} {have:>14,}  {'yes' if want == have else 'NO'}")
    rto = r.seconds_restore + r.seconds_recovery
    print()
    print(f"RTO (restore {r.seconds_restore:.1f} s + WAL replay and promotion {r.seconds_recovery:.1f} s): {rto:.1f} s")
    print(f"RPO if the whole cluster were lost at the end of the history: {rpo_text}")
    print("RPO if one member is lost: 0 (synchronous replication; see bench/failover_bench.py)")
    shutil.rmtree(drill, ignore_errors=True)
    with psycopg.connect(stack.ports.database_url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {DB} with (force)")
    if not ok:
        raise SystemExit("the restored database differs from the source at the target instant")


if __name__ == "__main__":
    main()
