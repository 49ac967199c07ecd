"""How many generated inputs the property-based tests tried, printed at the end of the test run."""

from __future__ import annotations

from collections import Counter

tried: Counter[str] = Counter()


def count(what: str, n: int = 1) -> None:
    tried[what] += n


def record(name: str, examples: int, outcomes: Counter[str]) -> None:
    """A property's examples and what became of them, in the summary; they must show that it ran."""
    assert examples > 0, f"{name}: hypothesis tried no example"
    detail = ", ".join(f"{outcome} {n}" for outcome, n in sorted(outcomes.items()))
    tried[f"hypothesis: {name}" + (f" ({detail})" if detail else "")] += examples
