"""The audit trail: who did what to money and contracts, and why."""
