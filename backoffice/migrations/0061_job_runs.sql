-- The scheduled jobs' last runs (issue 24): every Celery task records when it last started, succeeded
-- and failed (paygo/celery_app.py), so that monitoring can tell a nightly job that failed or ran late
-- (paygo_job_last_success_timestamp_seconds, deploy/prometheus/paygo-alerts.yml).
create table job_runs (
    task            text primary key,          -- the Celery task name, e.g. kpi.snapshot_daily
    last_started    timestamptz,
    last_succeeded  timestamptz,
    last_failed     timestamptz,
    last_error      text,
    runs            bigint not null default 0,
    failures        bigint not null default 0
);

-- What the exporter asks of the outbox on every scrape: the waiting rows per channel and the recent failures.
create index outbox_waiting_idx on outbox (channel, created_at) where state in ('pending', 'sent');
create index outbox_failed_idx on outbox (channel, created_at) where state = 'failed';
