"""Back office: the system of record — customers, units, contracts, the ledger, payments, credit and
tokens, field work — with its pages and API, a package per domain. It composes nothing: the web app,
the ``paygo`` command and the Celery app are assembled in ``paygo``, which imports the back office and
is imported by nothing."""
