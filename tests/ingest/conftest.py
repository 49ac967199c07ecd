"""The device doors' hostile tests report how many generated inputs they tried."""

from __future__ import annotations

from typing import Any

from tests.ingest.examples import TRIED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TRIED:
        return
    terminalreporter.section("hypothesis examples tried (device doors)")
    for name, (examples, outcomes) in TRIED.items():
        detail = ", ".join(f"{outcome} {n}" for outcome, n in sorted(outcomes.items()))
        terminalreporter.write_line(f"{name}: {examples} examples ({detail})")
