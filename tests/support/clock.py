"""The platform's clock in tests (backoffice/clock.py).

A test whose meaning depends on the date pins the clock, with the ``clock`` marker (the instant,
pinned before any fixture opens a connection) or with ``pinned`` in its body, and builds its data from
``clock.utc_now()`` / ``clock.today()``. A pin is the platform's "now" whatever PAYGO_NOW says, in this
process and in every process the test starts: it sets PAYGO_NOW (and its anchor, the machine's real
time) for the pin's duration, as a deployment outside production would, and time-machine holds the
machine's time still when the pin does not tick.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import time_machine

from backoffice import clock
from backoffice.db import share_clock


def instant(text_or_at: str | datetime) -> datetime:
    at = clock.parse_instant(text_or_at) if isinstance(text_or_at, str) else text_or_at
    if at.tzinfo is None:
        raise ValueError("a pinned instant states its offset")
    return at.astimezone(UTC)


@contextmanager
def pinned(at: str | datetime, *conns: psycopg.Connection, tick: bool = True) -> Iterator[datetime]:
    """The platform's clock at ``at`` (running on from there unless ``tick=False``), in Python, in the
    processes started meanwhile and in the given connections' ``paygo_now()``; back where it was after."""
    target = instant(at)
    saved = {k: os.environ.get(k) for k in (clock.NOW_ENV, clock.ANCHOR_ENV)}
    # The machine's own time, whatever pin is active (this module is where tests may read it).
    hatch = time_machine.escape_hatch
    real = hatch.time.time() if hatch.is_travelling() else time.time()  # noqa: TID251
    os.environ[clock.NOW_ENV] = target.isoformat()
    os.environ[clock.ANCHOR_ENV] = repr(real)
    try:
        # The machine's time stays real (ticking) or stands still at the anchor: now = target + elapsed.
        with time_machine.travel(datetime.fromtimestamp(real, UTC), tick=tick):
            for c in conns:
                share_clock(c)
            yield target
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for c in conns:
            share_clock(c)


def child_env(env: dict[str, str]) -> dict[str, str]:
    """An environment made from scratch for a process a test starts, given this process's clock."""
    return {**env, **{k: os.environ[k] for k in (clock.NOW_ENV, clock.ANCHOR_ENV) if k in os.environ}}
