"""SQL of monitoring: the jobs' runs (written by the Celery worker's task signals) and the figures the
platform exporter serves to Prometheus (paygo/exporter.py). Each read is one cheap indexed query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


def job_started(conn: psycopg.Connection, task: str) -> None:
    conn.execute(
        """insert into job_runs (task, last_started, runs) values (%s, paygo_now(), 1)
           on conflict (task) do update set last_started = paygo_now(), runs = job_runs.runs + 1""",
        (task,),
    )


def job_finished(conn: psycopg.Connection, task: str, error: str | None) -> None:
    if error is None:
        conn.execute(
            """insert into job_runs (task, last_succeeded) values (%s, paygo_now())
               on conflict (task) do update set last_succeeded = paygo_now()""",
            (task,),
        )
    else:
        conn.execute(
            """insert into job_runs (task, last_failed, last_error, failures) values (%s, paygo_now(), %s, 1)
               on conflict (task) do update set last_failed = paygo_now(), last_error = excluded.last_error,
                                                failures = job_runs.failures + 1""",
            (task, error[:2000]),
        )


@dataclass(frozen=True)
class JobRun:
    task: str
    last_started: datetime | None
    last_succeeded: datetime | None
    last_failed: datetime | None
    runs: int
    failures: int


def job_runs(conn: psycopg.Connection) -> list[JobRun]:
    with conn.cursor(row_factory=class_row(JobRun)) as cur:
        return cur.execute(
            "select task, last_started, last_succeeded, last_failed, runs, failures from job_runs order by task"
        ).fetchall()


@dataclass(frozen=True)
class OutboxQueue:
    channel: str
    waiting: int  # pending or sent and not acknowledged
    oldest_seconds: float  # how long the oldest of them has waited
    failed: int


def outbox_queues(conn: psycopg.Connection) -> list[OutboxQueue]:
    """Per channel, what waits in the outbox (outbox_due_idx covers the waiting rows)."""
    with conn.cursor(row_factory=class_row(OutboxQueue)) as cur:
        return cur.execute(
            """select c.channel,
                      (select count(*) from outbox o where o.channel = c.channel and o.state in ('pending', 'sent'))
                          as waiting,
                      coalesce((select extract(epoch from paygo_now() - min(o.created_at)) from outbox o
                                where o.channel = c.channel and o.state in ('pending', 'sent')), 0)::float8
                          as oldest_seconds,
                      (select count(*) from outbox o where o.channel = c.channel and o.state = 'failed'
                          and o.created_at > paygo_now() - interval '1 day') as failed
               from (values ('sms'), ('mqtt')) c(channel)"""
        ).fetchall()


def payments_last_hour(conn: psycopg.Connection) -> dict[str, int]:
    """Payment callbacks of the last hour by status (credited, unmatched, rejected, failed, ...)."""
    rows = conn.execute(
        """select status, count(*) from payment_inbox
           where received_at > paygo_now() - interval '1 hour' group by status"""
    ).fetchall()
    return {status: int(n) for status, n in rows}


def ingest_slots_unheld(conn: psycopg.Connection) -> tuple[int, int]:
    """(slots, slots whose lease has lapsed or that nobody holds): the latter strand telemetry."""
    row = conn.execute(
        """select count(*), count(*) filter (where holder is null or lease_until < paygo_now())
           from ingest_slots"""
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def dead_letters_last_hour(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "select count(*) from ingest_rejects where received_at > paygo_now() - interval '1 hour'"
    ).fetchone()
    return int(row[0]) if row else 0


def replication_lag(conn: psycopg.Connection) -> list[tuple[str, float]]:
    """Per standby, its replay lag in seconds, as the primary sees it (empty on a standby or alone)."""
    rows = conn.execute(
        """select application_name, coalesce(extract(epoch from replay_lag), 0)::float8
           from pg_stat_replication"""
    ).fetchall()
    return [(str(name), float(lag)) for name, lag in rows]
