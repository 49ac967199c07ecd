"""KPI snapshots from the live database: the worked examples through the database path, idempotent
re-runs, a process killed mid-snapshot (CLI and Celery worker) leaving nothing partial, the API,
the page and the CSV export."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from backoffice.config import Settings
from backoffice.money import to_minor
from kpi import repository
from kpi.service import take_snapshots
from paygo.celery_app import make_celery
from paygo.web import create_app
from tests.support import wait_for
from tests.support.staff import api_token

from .test_examples import EXAMPLES, assert_close

PAYGO = [sys.executable, "-m", "paygo.cli"]
MEDIUM = EXAMPLES / "medium"


def load_example(conn: psycopg.Connection, case: Path) -> None:
    """Put an example's products and ledger into the database (a unit per receipt_id)."""
    with (case / "products.csv").open() as f:
        for p in csv.DictReader(f):
            money = {k: to_minor(Decimal(p[k]), "KES") if p[k] else None for k in (
                "hardware_cost", "transport_cost", "import_tax", "insurance_cost", "installation_cost",
                "price_per_day", "price_to_own")}  # fmt: skip
            conn.execute(
                """insert into products (code, name, business_model, currency, hardware_cost, transport_cost,
                       import_tax, insurance_cost, installation_cost, lighting_global_certified, price_per_day,
                       price_to_own, contract_days, deposit_days)
                   values (%s, %s, %s, 'KES', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (p["product_type"], p["product_type"], p["business_model"],
                 *(money[k] or 0 for k in ("hardware_cost", "transport_cost", "import_tax", "insurance_cost",
                                           "installation_cost")),
                 p["lighting_global_certified"].lower() == "true", money["price_per_day"], money["price_to_own"],
                 int(p["contract_days"]) if p["contract_days"] else None,
                 int(p["deposit_days"]) if p["deposit_days"] else None),
            )  # fmt: skip
    products = dict(conn.execute("select code, id from products").fetchall())
    with (case / "ledger.csv").open() as f:
        rows = list(csv.DictReader(f))
    contracts: dict[str, int] = {}
    for r in rows:
        rid = r["receipt_id"]
        if rid in contracts:
            continue
        product = products[r["product_type"]]
        customer = conn.execute("insert into customers (name) values (%s) returning id", (r["customer_id"],))
        unit = conn.execute(
            "insert into units (serial, product_id) values (%s, %s) returning id", (f"SN-{rid}", product)
        )
        contracts[rid] = conn.execute(
            """insert into contracts (account_number, customer_id, unit_id, product_id, currency, signed_on)
               values (%s, %s, %s, %s, %s, %s) returning id""",
            (rid, customer.fetchone()[0], unit.fetchone()[0], product, r["currency"], r["date"]),  # type: ignore[index]
        ).fetchone()[0]  # type: ignore[index]
    with (
        conn.cursor() as cur,
        cur.copy("copy ledger_entries (contract_id, entry_date, status, type, amount, currency) from stdin") as copy,
    ):
        for r in rows:
            copy.write_row((contracts[r["receipt_id"]], r["date"], r["status"], r["type"],
                            to_minor(Decimal(r["amount"]), r["currency"]), r["currency"]))  # fmt: skip
    conn.commit()


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "PAYGO_ENVIRONMENT": "test", "PAYGO_DATABASE_URL": settings.database_url,
            "PAYGO_REDIS_URL": settings.redis_url, "PAYGO_HOME": str(settings.home.resolve()), **extra}  # fmt: skip


@pytest.mark.parametrize("case", sorted(EXAMPLES.glob("*/expected-*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_database_path_reproduces_example(case: Path, conn: psycopg.Connection) -> None:
    load_example(conn, case.parent)
    want = json.loads(case.read_text())
    company = case.parent / "company.json"
    as_of = date.fromisoformat(want["as_of"])
    with conn.transaction():
        take_snapshots(conn, [as_of], company if company.exists() else None)
    stored = {s.segment: s for s in repository.for_date(conn, as_of)}
    assert_close(stored["all"].result["kpis"], want["kpis"])
    assert stored["all"].result["currency"] == want["currency"]
    assert (
        stored["all"].distributions
        and stored["all"].distributions["revenue_30d"]["n"] == want["kpis"]["portfolio_size"]
    )


def test_snapshot_is_idempotent_and_segments_add_up(conn: psycopg.Connection) -> None:
    load_example(conn, MEDIUM)
    company = MEDIUM / "company.json"
    days = [date(2024, 5, 31), date(2024, 6, 30)]
    with conn.transaction():
        first = take_snapshots(conn, days, company)
    before = {(s.as_of, s.segment): s for d in days for s in repository.for_date(conn, d)}
    with conn.transaction():
        again = take_snapshots(conn, days[1:], company)  # re-run one date: replaced, not duplicated
    after = {(s.as_of, s.segment): s for d in days for s in repository.for_date(conn, d)}
    assert before.keys() == after.keys()
    assert [r for r in first if r["as_of"] == "2024-06-30"] == again
    assert after[(days[1], "all")].computed_at > before[(days[1], "all")].computed_at
    assert after[(days[0], "all")].computed_at == before[(days[0], "all")].computed_at
    for d in days:
        segments = [s for (when, seg), s in after.items() if when == d and seg != "all"]
        assert len(segments) >= 2
        total = after[(d, "all")].result["kpis"]["portfolio_size"]
        assert sum(s.result["kpis"]["portfolio_size"] for s in segments) == total


def _block_last_segment(settings: Settings, as_of: date) -> psycopg.Connection:
    """Hold an uncommitted snapshot row of the last segment, so that a snapshot of ``as_of`` stops there
    (waiting on the unique key) after it has written the earlier segments in its transaction."""
    blocker = psycopg.connect(settings.database_url)
    segment = blocker.execute("select max(code) from products").fetchone()[0]  # type: ignore[index]
    blocker.execute(
        "insert into kpi_snapshots (as_of, segment, currency, result, units) values (%s, %s, 'KES', '{}', 0)",
        (as_of, segment),
    )
    return blocker


def _waiting_on_lock(conn: psycopg.Connection, application: str) -> bool:
    """Whether a process of ``application`` waits on a lock. Asked as the cluster's superuser: the process
    logs in as its service's own role, whose sessions' wait events the owner role may not see."""
    settings_port = conn.info.port
    with psycopg.connect(host="127.0.0.1", port=settings_port, user="paygo", dbname="postgres") as admin:
        row = admin.execute(
            "select count(*) from pg_stat_activity where application_name = %s and wait_event_type = 'Lock'",
            (application,),
        ).fetchone()
    return bool(row and row[0])


def test_snapshot_killed_midway_leaves_nothing_partial(settings: Settings, conn: psycopg.Connection) -> None:
    load_example(conn, MEDIUM)
    as_of = date(2024, 6, 30)
    blocker = _block_last_segment(settings, as_of)
    company = str(MEDIUM / "company.json")
    proc = subprocess.Popen([*PAYGO, "kpi", "snapshot", "--as-of", as_of.isoformat(), "--company", company],
                            env=_env(settings), stderr=subprocess.PIPE)  # fmt: skip
    try:
        conn.autocommit = True
        wait_for(lambda: _waiting_on_lock(conn, "kpi"), timeout=60, what="the snapshot to reach the last segment")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        blocker.rollback()
        blocker.close()
    assert repository.for_date(conn, as_of) == []  # not "all" without the segments: nothing at all

    done = subprocess.run([*PAYGO, "kpi", "snapshot", "--as-of", as_of.isoformat(), "--company", company],
                          env=_env(settings), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "portfolio" in done.stderr and "stored" in done.stderr
    segments = {s.segment for s in repository.for_date(conn, as_of)}
    assert "all" in segments and len(segments) == 1 + conn.execute("select count(*) from products").fetchone()[0]  # type: ignore[index]


@pytest.fixture
def celery_settings(settings: Settings) -> Iterator[Settings]:
    """Settings with a Redis database of the test's own (emptied before and after)."""
    url = settings.redis_url.rsplit("/", 1)[0] + "/13"
    redis.Redis.from_url(url).flushdb()
    yield settings.model_copy(update={"redis_url": url, "task_visibility_timeout": 5})
    redis.Redis.from_url(url).flushdb()


def _worker(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*PAYGO, "worker", "run", "--loglevel", "WARNING"],
                            env=_env(settings, PAYGO_TASK_VISIBILITY_TIMEOUT="5"))  # fmt: skip


def test_celery_worker_killed_mid_task_leaves_nothing_partial_and_the_task_runs_again(
    celery_settings: Settings, conn: psycopg.Connection
) -> None:
    settings = celery_settings
    load_example(conn, EXAMPLES / "small")
    as_of = date(2024, 6, 30)
    celery = make_celery(settings)
    blocker = _block_last_segment(settings, as_of)
    worker = _worker(settings)
    second: subprocess.Popen[bytes] | None = None
    try:
        result = celery.send_task("kpi.snapshot", args=[as_of.isoformat()])
        conn.autocommit = True
        wait_for(lambda: _waiting_on_lock(conn, "worker"), timeout=60, what="the task to reach the last segment")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        blocker.rollback()
        assert repository.for_date(conn, as_of) == []
        second = _worker(settings)  # the broker hands the unacknowledged task out again
        outcome = result.get(timeout=90)
        assert outcome["as_of"] == as_of.isoformat() and outcome["segments"] >= 2
        stored = repository.for_date(conn, as_of)
        assert len(stored) == outcome["segments"] and stored[0].segment == "all"
    finally:
        blocker.close()
        for proc in (worker, second):
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)


def test_kpi_page_api_and_csv_export(settings: Settings, conn: psycopg.Connection) -> None:
    investor = api_token(settings.database_url, "viewer")
    with TestClient(create_app(settings), headers=investor) as client:
        empty = client.get("/kpi")
        assert empty.status_code == 200 and "paygo kpi snapshot" in empty.text
        assert client.get("/api/kpi/latest").json() == []
        load_example(conn, MEDIUM)
        with conn.transaction():
            take_snapshots(conn, [date(2024, 4, 30), date(2024, 5, 31), date(2024, 6, 30)], MEDIUM / "company.json")
        latest = client.get("/api/kpi/latest").json()
        assert latest[0]["segment"] == "all" and latest[0]["as_of"] == "2024-06-30"
        one = client.get("/api/kpi/snapshots/2024-05-31").json()
        assert one["results"][0]["as_of"] == "2024-05-31" and one["distributions"]["amount_ahead_behind"]["n"] > 0
        missing = client.get("/api/kpi/snapshots/2020-01-01")
        assert missing.status_code == 404 and "paygo kpi snapshot" in missing.json()["detail"]
        series = client.get("/api/kpi/series", params={"months": 240}).json()
        assert [s["as_of"] for s in series] == ["2024-04-30", "2024-05-31", "2024-06-30"]

        page = client.get("/kpi")
        assert page.status_code == 200
        size = latest[0]["kpis"]["portfolio_size"]
        assert "2024-06-30" in page.text and f"<td>{size}</td>" in page.text
        assert page.text.count("<circle") >= 3 * 4  # four headline series, three month-ends each
        assert "<rect" in page.text and "https://" not in page.text and "<script" not in page.text

        export = client.get("/api/kpi/export.csv", params={"months": 240})
        assert export.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert {r["as_of"] for r in rows} == {"2024-04-30", "2024-05-31", "2024-06-30"}
        june = next(r for r in rows if r["as_of"] == "2024-06-30" and r["segment"] == "all")
        assert float(june["par.30"]) == pytest.approx(latest[0]["kpis"]["par"]["30"], rel=1e-12)
