"""The platform's clock in tests (backoffice/clock.py).

A test whose meaning depends on the date pins the clock, with the ``clock`` marker (the instant,
pinned before any fixture opens a connection) or with ``pinned`` in its body, and builds its data from
``clock.utc_now()`` / ``clock.today()``. A pin is the platform's "now" whatever PAYGO_NOW says: it
travels time-machine to the instant less PAYGO_NOW's offset. Processes a test starts get the same
instant as their PAYGO_NOW (``child_env``), since time-machine does not cross into them.
"""

from __future__ import annotations

import os
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
    """The platform's clock at ``at`` (running on from there unless ``tick=False``), in Python and in
    the given connections' ``paygo_now()``; back where it was after."""
    target = instant(at)
    with time_machine.travel(target - clock.offset(), tick=tick):
        for c in conns:
            share_clock(c)
        yield target
    for c in conns:
        share_clock(c)


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a process a test starts: the platform's "now" starts where this process's is."""
    out = dict(os.environ if env is None else env)
    if time_machine.escape_hatch.is_travelling() or out.get(clock.NOW_ENV):
        out[clock.NOW_ENV] = clock.utc_now().isoformat()
        out.pop(clock.ANCHOR_ENV, None)
    return out
