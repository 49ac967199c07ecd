"""The composition package: it may import every package of ours and nothing imports it. It assembles
the ``paygo`` command, the web app (every domain's routers), the Celery app and its one schedule, and
the orchestrations that span packages (the history backfill, the live fleet, the demo). ``devtools``
reaches across packages too (the local stack and the demo data drive the back office, ingest and the
simulator), for development only: ``paygo`` alone imports it (the ``devtools`` import contract)."""
