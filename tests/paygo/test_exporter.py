"""The platform exporter (paygo/exporter.py) and the jobs' runs it reports: what the alert rules of
deploy/prometheus watch, read from a real database."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from backoffice import clock
from backoffice.config import Settings
from ingest import repository as slots
from paygo.celery_app import app as celery_app
from paygo.exporter import PlatformCollector
from paygo.web import create_app
from tests.support import serve


def _samples(settings: Settings) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(PlatformCollector(settings))
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_the_exporter_reports_jobs_slots_and_queues(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.tasks import ensure_telemetry_partitions

    # The task's own app (an earlier test may have made another Celery app the current one).
    for app in {celery_app, ensure_telemetry_partitions.app}:
        monkeypatch.setitem(app.conf, "paygo_settings", settings)

    ensure_telemetry_partitions.apply().get()  # a real task: its run is recorded by the worker's signals
    slots.ensure_slots(conn, 4)
    slots.heartbeat(conn, "w1", 30)
    slots.claim_slots(conn, "w1", 2, 30)  # two slots held, two nobody holds
    conn.commit()
    before = clock.utc_now()

    got = _samples(settings)
    assert got[("paygo_exporter_database_up", ())] == 1
    assert got[("paygo_ingest_slots", ())] == 4 and got[("paygo_ingest_slots_unheld", ())] == 2
    task = (("task", "ingest.ensure_partitions"),)
    succeeded = got[("paygo_job_last_success_timestamp_seconds", task)]
    assert before.timestamp() - 60 < succeeded <= before.timestamp() + 1
    assert got[("paygo_job_last_failure_timestamp_seconds", task)] == 0
    assert got[("paygo_outbox_waiting", (("channel", "sms"),))] == 0
    assert got[("paygo_payments_last_hour", (("status", "failed"),))] == 0
    assert got[("paygo_dead_letters_last_hour", ())] == 0


def test_a_failed_job_is_recorded_with_its_error(settings: Settings, conn: psycopg.Connection,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    broken = settings.model_copy(update={"kpi_company_file": settings.home_dir / "no-such-company.json"})
    from kpi.tasks import snapshot_daily

    for app in {celery_app, snapshot_daily.app}:
        monkeypatch.setitem(app.conf, "paygo_settings", broken)

    result = snapshot_daily.apply()
    assert result.failed()
    row = conn.execute("select runs, failures, last_error, last_succeeded from job_runs where task = %s",
                       (snapshot_daily.name,)).fetchone()  # fmt: skip
    assert row is not None and row[0] == 1 and row[1] == 1 and row[3] is None
    assert "no-such-company" in row[2]
    got = _samples(settings)
    labels = (("task", snapshot_daily.name),)
    assert (
        got[("paygo_job_last_failure_timestamp_seconds", labels)]
        > got[("paygo_job_last_success_timestamp_seconds", labels)]
    )


def test_the_readiness_probe_asks_the_database(settings: Settings) -> None:
    with serve(create_app(settings)) as url:
        assert httpx.get(f"{url}/ready").json() == {"status": "ready"}
    gone = settings.model_copy(update={"database_url": settings.database_url.rsplit("/", 1)[0] + "/no_such_db"})
    app = create_app(gone)
    with serve(app) as url:
        answer = httpx.get(f"{url}/ready", timeout=30)
        assert answer.status_code == 503 and answer.json()["status"] == "database unavailable"
        assert httpx.get(f"{url}/health").status_code == 200  # alive, not ready
