"""What ingest takes from units and how far it trusts their clocks: shared by the worker's network
side (ingest/consumer.py), its database side (ingest/dbside.py) and OpenPAYGO Metrics."""

from __future__ import annotations

from datetime import timedelta

import protocol

KINDS: tuple[protocol.Kind, ...] = ("telemetry", "status", "events", "metrics")  # what units publish, taken here
# Readings further in the future than this are refused (a unit's clock gone wrong).
MAX_FUTURE = timedelta(hours=1)
# Readings this long before the unit was registered are refused.
MAX_BEFORE_CREATED = timedelta(days=1)
# A message larger than the protocol allows is kept only this far (its dead letter's payload): the
# broker lets such messages through (devtools/mosquitto.py) so that they leave a dead letter.
DEAD_LETTER_KEEP = 4096
