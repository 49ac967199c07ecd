"""Development tools: the local stack (PostgreSQL, Mosquitto, Redis, nginx and the HA cluster), TLS,
installers, demo data and the lint helpers. Imported by nothing of ours but ``paygo`` (the CLI and the
composition of the demo), and by tests and benchmarks: the import contract ``devtools`` in
``.importlinter`` says so."""
