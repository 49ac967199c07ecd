"""Fleet health (issue 16): battery state of health, alerts with evidence, telemetry-aware collections
and the call centre's outreach queue, derived each night from the units' telemetry."""
