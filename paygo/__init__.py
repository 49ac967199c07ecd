"""The composition package: the only code that imports across domains. It assembles the ``paygo``
command, the web app (every domain's routers), the Celery app and its one schedule, and the
orchestrations that span packages (the history backfill, the live fleet, the demo)."""
