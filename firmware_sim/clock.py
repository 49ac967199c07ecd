"""An accelerated simulated clock: simulated time runs ``speed`` times faster than real time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass
class SimClock:
    start: datetime
    speed: float = 1.0
    # Once simulated time catches up with the real clock it runs at real speed, so that a demo
    # started in the past never sends readings from the future.
    catch_up: bool = True
    # The world's "now" that catching up stops at: the machine's clock for a unit on its own; the
    # platform passes its clock (which PAYGO_NOW may move), so units never report from its future.
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _t0: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        sim = self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)
        if self.catch_up:
            sim = min(sim, self.wall())
        return sim

    def real_seconds_until(self, when: datetime) -> float:
        """How long to sleep (real seconds) until the simulated clock reaches ``when``."""
        now = self.now()
        if when <= now:
            return 0.0
        if self.catch_up and now >= self.wall() - timedelta(seconds=1):
            return (when - now).total_seconds()
        return (when - now).total_seconds() / self.speed
