"""The one beat schedule of the platform: every periodic task, its cadence and why.

Times are UTC. Each entry sets ``expires`` so that a beat that fell behind (the worker was down)
does not pile up stale runs: a snapshot that could not start in time is skipped, and the next
one, which recomputes from the whole ledger, covers it.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

HOUR = 3600

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Every 5 minutes: ask MTN MoMo about requests still PENDING. Its callback is sent once and never
    # retried, so this is how a missed one is found; customers wait for their token meanwhile.
    "payments-poll-momo-pending": {
        "task": "payments.poll_momo_pending",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    # Daily at 06:00 UTC (13:00 in Cambodia, 09:00 in East Africa: read by day, never at night): SMS
    # reminders to customers whose credit ends in PAYGO_REMINDER_DAYS days. Once per contract, credit
    # period and offset (a unique key), so a second run the same day sends nothing again. In a zone where
    # 06:00 UTC is night, the dispatcher holds them until PAYGO_SMS_QUIET_HOURS end.
    "sms-send-reminders": {
        "task": "sms.send_reminders",
        "schedule": crontab(minute=0, hour=6),
        "options": {"expires": 6 * HOUR},
    },
    # Mondays at 00:15: telemetry partitions for the next four weeks (plain PostgreSQL; TimescaleDB makes
    # its own chunks). Four weeks ahead means three missed runs still leave no reading in the default
    # partition; each run is a few cheap DDL statements.
    "ingest-ensure-partitions": {
        "task": "ingest.ensure_partitions",
        "schedule": crontab(minute=15, hour=0, day_of_week="mon"),
        "options": {"expires": 24 * HOUR},
    },
    # Daily at 01:30: yesterday's KPIs (overall and per product), once the day's late mobile-money
    # confirmations have landed; the call centre and the KPI page read these in the morning.
    "kpi-daily-snapshot": {
        "task": "kpi.snapshot_daily",
        "schedule": crontab(minute=30, hour=1),
        "options": {"expires": 6 * HOUR},
    },
    # 1st of each month at 02:30: the month-end snapshot that investor reports and the 24-month
    # charts use; run again on the 2nd at 02:30 in case statement imports corrected the month.
    "kpi-month-end-snapshot": {
        "task": "kpi.snapshot_month_end",
        "schedule": crontab(minute=30, hour=2, day_of_month="1,2"),
        "options": {"expires": 12 * HOUR},
    },
    # Daily at 00:45: yesterday's fleet health (battery state of health, alerts, collections classes,
    # the outreach queue), once readings sent just before midnight have arrived; the call centre's
    # queue is ready in the morning.
    "health-evaluate-daily": {
        "task": "health.evaluate_daily",
        "schedule": crontab(minute=45, hour=0),
        "options": {"expires": 12 * HOUR},
    },
}
