"""Credit: what a payment buys (days of light), OpenPAYGO tokens and their delivery outbox rows."""
