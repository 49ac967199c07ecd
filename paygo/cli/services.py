"""The platform's long-running processes: ingest workers, the web app, token delivery, Celery workers and beat."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from paygo.cli.common import settings_or_exit, setup_logging

ingest_app = typer.Typer(help="Telemetry ingestion workers.", no_args_is_help=True)
api_app = typer.Typer(help="The back-office web application (API and call-centre pages).", no_args_is_help=True)
delivery_app = typer.Typer(help="Token delivery: SMS and unit commands from the outbox.", no_args_is_help=True)
worker_app = typer.Typer(help="Celery workers for background jobs (KPI snapshots, MoMo polling).", no_args_is_help=True)
metrics_app = typer.Typer(help="The platform exporter for Prometheus (queues, jobs, errors).", no_args_is_help=True)
beat_app = typer.Typer(help="The Celery beat scheduler (paygo/schedule.py).", no_args_is_help=True)


@ingest_app.command("run")
def ingest_run(
    worker_id: Annotated[
        str,
        typer.Option(
            help="this worker's name in the slot leases (default: the host name); the broker sessions "
            "belong to the slots (PAYGO_INGEST_SLOTS), so ids may come and go, but no two live workers may share one"
        ),
    ] = "",
    prometheus_port: Annotated[
        int, typer.Option(help="serve the worker's Prometheus metrics on this port (0: none)")
    ] = 0,
    metrics_address: Annotated[
        str, typer.Option(help="address of the metrics port (0.0.0.0 in a pod, for Prometheus)")
    ] = "127.0.0.1",
    batch_size: Annotated[int, typer.Option(help="messages per transaction at most")] = 5000,
    flush_ms: Annotated[int, typer.Option(help="flush a partial batch after this long")] = 200,
) -> None:
    """Run one ingest worker: MQTT shared subscription in, COPY into PostgreSQL, ack after commit."""
    from ingest.main import default_worker_id, run_worker

    settings = settings_or_exit()
    setup_logging(settings)
    run_worker(settings, worker_id or default_worker_id(), prometheus_port or None, batch_size, flush_ms / 1000,
               metrics_address)  # fmt: skip


@ingest_app.command("device-api")
def ingest_device_api(
    port: Annotated[int, typer.Option(help="port (default PAYGO_DEVICE_API_PORT)")] = 0,
    host: Annotated[
        str, typer.Option(help="address to listen on (0.0.0.0 in a pod, behind its Service)")
    ] = "127.0.0.1",
) -> None:
    """Serve OpenPAYGO Metrics (POST /dd) for units that report over HTTP (on 127.0.0.1 unless --host)."""
    import uvicorn

    from ingest.device_api import create_device_app

    settings = settings_or_exit()
    setup_logging(settings)
    uvicorn.run(create_device_app(settings), host=host, port=port or settings.device_api_port,
                forwarded_allow_ips=settings.trusted_proxies,
                log_level="warning")  # fmt: skip


@api_app.command("run")
def api_run(
    port: Annotated[int, typer.Option(help="port (default PAYGO_API_PORT)")] = 0,
    workers: Annotated[int, typer.Option(help="server processes (one per core is a good start)")] = 1,
    host: Annotated[
        str, typer.Option(help="address to listen on (0.0.0.0 in a pod, behind its Service)")
    ] = "127.0.0.1",
) -> None:
    """Serve the back-office API, the payment callbacks and the call-centre pages (on 127.0.0.1 unless --host)."""
    import uvicorn

    settings = settings_or_exit()
    setup_logging(settings)
    # X-Forwarded-For and -Proto (the caller's address, TLS for Secure cookies) are believed only from
    # PAYGO_TRUSTED_PROXIES, the same proxies the app's own checks trust.
    uvicorn.run("paygo.web:create_app", factory=True, host=host, port=port or settings.api_port,
                workers=workers, log_level="warning", forwarded_allow_ips=settings.trusted_proxies)  # fmt: skip


@delivery_app.command("run")
def delivery_run(
    interval: Annotated[float, typer.Option(help="seconds between outbox polls")] = 1.0,
    retry_after: Annotated[
        float | None,
        typer.Option(
            help="seconds before an unacknowledged unit command is first resent (then doubling); "
            "default PAYGO_DELIVERY_RETRY_SECONDS"
        ),
    ] = None,
) -> None:
    """Send tokens waiting in the outbox (SMS through the gateway, commands to the units over MQTT),
    record the units' acknowledgements and retry the rest; Ctrl-C stops it."""
    import threading

    from backoffice.delivery.main import run

    settings = settings_or_exit()
    setup_logging(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run(settings, stop, interval, retry_after)
    except KeyboardInterrupt:
        stop.set()


@worker_app.command("run")
def worker_run(loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO") -> None:
    """Run a Celery worker, one task at a time; Ctrl-C stops it. Run more workers for more parallelism.

    A worker killed during a task leaves no partial result (every task is one transaction), and the
    task is handed out again after PAYGO_TASK_VISIBILITY_TIMEOUT seconds.
    """
    from paygo.celery_app import app as celery

    celery.worker_main(["worker", "--pool", "solo", "--loglevel", loglevel, "--hostname", "paygo@%h"])


@beat_app.command("run")
def beat_run(loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO") -> None:
    """Send the tasks of paygo/schedule.py on time. Run exactly one beat."""
    from paygo.celery_app import app as celery

    state = celery.conf.paygo_settings.home / "celerybeat-schedule"
    state.parent.mkdir(parents=True, exist_ok=True)
    celery.start(["beat", "--loglevel", loglevel, "--schedule", str(state)])


@metrics_app.command("serve")
def metrics_serve(
    port: Annotated[int, typer.Option(help="port of /metrics")] = 9200,
    address: Annotated[str, typer.Option(help="address to listen on (0.0.0.0 in a pod)")] = "127.0.0.1",
) -> None:
    """Serve the platform's figures read from the database (outbox, payments, dead letters, ingest slots,
    the scheduled jobs' last runs, replication lag) for Prometheus and its alerts (deploy/prometheus)."""
    from paygo.exporter import serve

    settings = settings_or_exit()
    setup_logging(settings)
    serve(settings, port, address)
