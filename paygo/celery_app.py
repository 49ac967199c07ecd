"""The Celery application of the platform's background jobs: Redis broker, the tasks of every
package (each a ``shared_task``: kpi/tasks.py, ingest/tasks.py, backoffice/payments/tasks.py,
backoffice/sms/tasks.py), the one beat schedule (paygo/schedule.py).

    celery -A paygo.celery_app worker      (or: paygo worker run)
    celery -A paygo.celery_app beat        (or: paygo beat run)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from celery import Celery

from backoffice.config import Settings, load_settings
from paygo.schedule import BEAT_SCHEDULE

TASK_MODULES = [
    "kpi.tasks",
    "ingest.tasks",
    "backoffice.payments.tasks",
    "backoffice.sms.tasks",
    "backoffice.health.tasks",
]


def make_celery(settings: Settings) -> Celery:
    celery = Celery(
        "paygo",
        broker=settings.redis_url,
        backend=settings.redis_url,
        include=TASK_MODULES,
    )
    celery.conf.update(
        # A task is acknowledged when it has finished, not when it starts: if the worker is killed
        # the broker hands the task out again (after the visibility timeout), and the snapshot,
        # written in one transaction, is either all there or not at all.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": settings.task_visibility_timeout,
            # Look for abandoned tasks this often (kombu's default sweep is every ~100 s).
            "unacked_restore_interval": max(1, min(60, settings.task_visibility_timeout // 2)),
            "unacked_restore_throttle": 1,
            **_sentinel(settings),
        },
        broker_connection_retry_on_startup=True,
        # Behind Sentinel (PAYGO_REDIS_URL=sentinel://...;sentinel://...): the master's name, for the
        # broker and for the results; after a failover both reconnect to the new primary.
        result_backend_transport_options=_sentinel(settings),
        result_expires=7 * 24 * 3600,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # The schedule's hours are the company's (PAYGO_TIMEZONE): "after midnight" is its midnight.
        timezone=settings.timezone,
        enable_utc=True,
        beat_schedule=BEAT_SCHEDULE,
        worker_hijack_root_logger=False,
    )
    # The tasks read the settings from here (``current_app.conf.paygo_settings``).
    celery.conf.paygo_settings = settings
    return celery


def _sentinel(settings: Settings) -> dict[str, object]:
    if not settings.redis_url.startswith("sentinel://"):
        return {}
    return {"master_name": settings.redis_sentinel_master}


def _record_runs() -> None:
    """Every task's start, success and failure in job_runs (backoffice/monitoring), for the alerts on a
    nightly job that failed or ran late. Each record is its own short transaction on the database of
    the task's app (``conf.paygo_settings``): a record that fails is logged and never fails the task."""
    import logging

    from celery import signals

    from backoffice.db import connect
    from backoffice.monitoring import repository

    log = logging.getLogger("paygo.jobs")

    def record(task: Any, write: Callable[[psycopg.Connection, str], None]) -> None:
        try:
            settings: Settings = task.app.conf.paygo_settings
            with connect(settings, "worker", autocommit=True) as conn:
                write(conn, task.name)
        except Exception as err:  # noqa: BLE001 - monitoring must not break a job
            log.warning("could not record a run of %s: %s", getattr(task, "name", task), err)

    @signals.task_prerun.connect(weak=False)
    def _started(sender: Any = None, **_: Any) -> None:
        record(sender, repository.job_started)

    @signals.task_success.connect(weak=False)
    def _succeeded(sender: Any = None, **_: Any) -> None:
        record(sender, lambda conn, name: repository.job_finished(conn, name, None))

    @signals.task_failure.connect(weak=False)
    def _failed(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
        record(sender, lambda conn, name: repository.job_finished(conn, name, repr(exception)))


app = make_celery(load_settings())
_record_runs()
