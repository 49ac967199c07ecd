"""How many generated inputs the property-based tests tried, printed at the end of the test run."""

from __future__ import annotations

from collections import Counter

tried: Counter[str] = Counter()


def count(what: str, n: int = 1) -> None:
    tried[what] += n
