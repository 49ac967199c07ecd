"""The HA stack (issue 23): the PostgreSQL leader killed -9 while payments arrive; Patroni promotes the
synchronous standby, the web app reaches it through the multi-host string, and no payment answered
with success is lost or credited twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from backoffice.db import primary_gone, share_clock
from backoffice.migrate import migrate
from devtools.ha import faults
from devtools.ha.stack import HAStack
from devtools.postgres import OWNER
from paygo.celery_app import make_celery
from paygo.web import create_app
from tests.support import serve, wait_for
from tests.support.money import SHORTCODE, WEBHOOK_SECRET, Device, confirmation, make_accounts, make_products


@dataclass
class HA:
    stack: HAStack
    settings: Settings


@pytest.fixture(scope="module")
def ha(base_settings: Settings) -> Iterator[HA]:
    """The HA stack (started for this module if it was not running) and a migrated database of our own.
    Mosquitto is the session's local stack's (base_settings), which the HA stack shares and leaves alone."""
    settings = base_settings
    stack = HAStack(settings)
    was_running = stack.running()
    stack.up()
    name = f"paygo_ha_test_{os.getpid()}"
    with psycopg.connect(stack.ports.database_url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
        admin.execute(f"create database {name} owner {OWNER}")
    url = stack.ports.database_url(name, user=OWNER)  # migrations run as the owner, as in production
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    yield HA(stack, settings.model_copy(update={
        "database_url": url, "mpesa_shortcodes": SHORTCODE, "webhook_secrets": {"wing": WEBHOOK_SECRET},
        "payment_time_window_hours": 24 * 365 * 20}))  # fmt: skip
    with psycopg.connect(stack.ports.database_url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
    if not was_running:
        stack.down(keep_broker=True)


def test_primary_gone_knows_a_failover_from_a_bad_transaction() -> None:
    assert primary_gone(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert primary_gone(psycopg.errors.AdminShutdown("terminating connection due to administrator command"))
    assert primary_gone(psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"))
    assert not primary_gone(psycopg.errors.UniqueViolation("duplicate key"))
    assert not primary_gone(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))
    assert not primary_gone(ValueError("not a database error"))


@pytest.mark.slow
def test_leader_killed_while_payments_arrive_loses_no_acknowledged_payment(ha: HA) -> None:
    with psycopg.connect(ha.settings.database_url) as conn:
        share_clock(conn)
        _, lamp = make_products(conn)
        accounts = make_accounts(conn, ha.settings, lamp, 20, "HA")
        conn.commit()
    by_number = {a.number: a for a in accounts}

    acked: list[tuple[float, str, str]] = []  # (when answered with success, M-Pesa TransID, account)
    errors: list[str] = []
    stop = threading.Event()

    def sender(k: int) -> None:
        with httpx.Client(timeout=120) as client:
            i = 0
            while not stop.is_set():
                acct = accounts[(k + i) % len(accounts)].number
                txn = f"HA{k}X{i:06d}"
                i += 1
                try:
                    r = client.post(f"{url}/payments/mpesa/c2b/confirmation", json=confirmation(acct, "500", txn))
                except httpx.HTTPError as err:
                    errors.append(f"{txn}: {err!r}")
                    continue
                if r.status_code == 200 and r.json().get("ResultCode") == 0:
                    acked.append((time.monotonic(), txn, acct))
                else:
                    errors.append(f"{txn}: {r.status_code} {r.text[:200]}")

    with serve(create_app(ha.settings)) as url:
        threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(3)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(acked) >= 30, timeout=120, what="payments credited before the fault")
            old, killed_at = faults.kill_leader(ha.stack)
            new = faults.wait_new_leader(ha.stack, old)
            assert new.index != old.index
            wait_for(lambda: sum(1 for t, _, _ in acked if t > killed_at + 1) >= 30, timeout=180,
                     what="payments credited by the new leader")  # fmt: skip
        finally:
            stop.set()
            for t in threads:
                t.join(150)
    faults.rejoin(ha.stack, old)

    answered = [txn for _, txn, _ in acked]
    with psycopg.connect(ha.settings.database_url) as conn:
        rows = conn.execute(
            "select provider_txn_id, status, id, contract_id, amount from payment_inbox where provider = 'mpesa'"
        ).fetchall()
        inbox = {r[0]: r for r in rows}
        # Every payment answered with success is stored once (UNIQUE) and credited.
        assert len(rows) == len(inbox)
        missing = [t for t in answered if t not in inbox]
        assert not missing, f"{len(missing)} acknowledged payments lost, e.g. {missing[:5]}"
        assert all(inbox[t][1] == "credited" for t in answered)
        # ... exactly once: never two tokens for one payment, and the ledger holds each amount once.
        tokens = conn.execute(
            "select t.inbox_id, t.unit_id, t.count, t.token, t.token_type from tokens t"
            " join payment_inbox p on p.id = t.inbox_id where p.provider = 'mpesa' order by t.unit_id, t.count"
        ).fetchall()
        per_payment: dict[int, int] = {}
        for inbox_id, *_ in tokens:
            per_payment[inbox_id] = per_payment.get(inbox_id, 0) + 1
        credited = [r for r in rows if r[1] == "credited"]
        assert tokens and set(per_payment.values()) == {1}
        assert set(per_payment) <= {r[2] for r in credited}
        for acct in accounts:
            paid = sum(r[4] for r in credited if r[3] == acct.contract_id)
            in_ledger = conn.execute(
                "select coalesce(sum(amount), 0) from ledger_entries where contract_id = %s and status = 'completed'",
                (acct.contract_id,),
            ).fetchone()
            assert in_ledger is not None and in_ledger[0] == paid, acct.number
    # Every token is valid on its unit, in count order, no count used twice (the official decoder).
    devices = {a.unit_id: Device(a) for a in by_number.values()}
    for _, unit_id, count, token, _ in tokens:
        assert devices[unit_id].enter(token), f"unit {unit_id} refused token count {count}"
    # Requests that failed during the failover (the provider would retry them) are the only errors.
    assert len(errors) < len(acked), errors[:5]


@pytest.mark.slow
def test_reads_that_may_lag_are_served_by_a_standby(ha: HA) -> None:
    """PAYGO_DATABASE_READ_URL with target_session_attrs=prefer-standby: the KPI API reads on a standby
    (its read pool's connections are there, none on the leader) while writes go to the leader."""
    from fastapi.testclient import TestClient
    from psycopg.conninfo import conninfo_to_dict

    from backoffice.db import connect_read
    from tests.support.staff import api_token

    name = str(conninfo_to_dict(ha.settings.database_url)["dbname"])
    settings = ha.settings.model_copy(update={"database_read_url": ha.stack.ports.standby_url(name, user=OWNER)})
    leader = ha.stack.leader()
    with connect_read(settings, "api") as conn:
        in_recovery, port = conn.execute("select pg_is_in_recovery(), inet_server_port()").fetchone() or (None, None)
    assert in_recovery is True and port != leader.port

    headers = api_token(settings.database_url, "finance", "viewer")
    with TestClient(create_app(settings), headers=headers) as client:
        assert client.get("/api/kpi/latest").status_code == 200
        assert client.get("/api/v1/fleet-health/alerts").status_code == 200
        readers = {}
        for member in ha.stack.members:
            with psycopg.connect(f"postgresql://paygo@127.0.0.1:{member.port}/{name}", autocommit=True) as conn:
                row = conn.execute(
                    "select pg_is_in_recovery(), count(*) filter (where application_name = 'api (read)')"
                    " from pg_stat_activity where datname = current_database()"
                ).fetchone()
                assert row is not None
                readers[member.name] = (bool(row[0]), int(row[1]))
    assert readers[leader.name] == (False, 0), readers
    assert any(standby and n > 0 for standby, n in readers.values()), readers


@pytest.mark.slow
def test_celery_through_sentinel_runs_tasks_after_the_redis_primary_is_killed(ha: HA) -> None:
    """Broker and results through kombu's sentinel:// transport: a Redis failover loses no task, and the
    KPI snapshot (idempotent: it replaces the date's snapshot) run twice stores one."""
    import redis

    settings = ha.settings.model_copy(update={"redis_url": ha.stack.ports.redis_url(db=13)})
    env = {**os.environ, "PAYGO_ENVIRONMENT": "test", "PAYGO_DATABASE_URL": settings.database_url,
           "PAYGO_REDIS_URL": settings.redis_url, "PAYGO_HOME": str(settings.home.resolve())}  # fmt: skip
    worker = subprocess.Popen([sys.executable, "-m", "paygo.cli", "worker", "run", "--loglevel", "WARNING"], env=env)
    celery = make_celery(settings)
    try:
        day = "2026-11-30"
        assert celery.send_task("kpi.snapshot", args=[day]).get(timeout=120)["as_of"] == day
        old, _ = faults.kill_redis_primary(ha.stack)
        new = faults.wait_redis_failover(ha.stack, old)
        assert new.index != old.index
        again = celery.send_task("kpi.snapshot", args=[day])  # the same task again, through the new primary
        assert again.get(timeout=180)["as_of"] == day
        faults.restart_redis(ha.stack, old)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        master = ha.stack.sentinels[0].master()
        if master:
            redis.Redis(host=master[0], port=master[1], db=13).flushdb()
    with psycopg.connect(settings.database_url) as conn:
        stored = conn.execute("select segment, count(*) from kpi_snapshots where as_of = %s group by segment",
                              (date(2026, 11, 30),)).fetchall()  # fmt: skip
    assert stored and all(n == 1 for _, n in stored)
