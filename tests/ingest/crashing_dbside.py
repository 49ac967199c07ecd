"""A worker's database process that dies (``os._exit``) on any batch holding a message with
``CRASH`` in its payload, as a process killed by a bug or by the kernel would; everything else it
does as ``ingest.dbside`` does. Run as ``python -m tests.ingest.crashing_dbside FD`` by the tests'
worker, to show that such a message is dead-lettered after a bounded number of attempts."""

from __future__ import annotations

import os
import sys

from ingest import dbside
from ingest.dbside import RawMessage

CRASH = b"crash-me"
_commit = dbside.DbSide.commit


def _commit_or_die(self: dbside.DbSide, messages: list[RawMessage]) -> tuple[int, int, float]:
    if any(CRASH in m.payload for m in messages):
        os._exit(70)
    return _commit(self, messages)


if __name__ == "__main__":
    dbside.DbSide.commit = _commit_or_die  # type: ignore[method-assign]
    dbside.main(int(sys.argv[1]))
