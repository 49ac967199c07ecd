"""How many inputs the hypothesis properties of the device doors tried, and what became of them;
printed at the end of the run (tests/ingest/conftest.py)."""

from __future__ import annotations

from collections import Counter

TRIED: dict[str, tuple[int, Counter[str]]] = {}


def record(name: str, examples: int, outcomes: Counter[str]) -> None:
    """Keep a property's counts for the summary; they must show that it ran."""
    assert examples > 0, f"{name}: hypothesis tried no example"
    TRIED[name] = (examples, outcomes)
