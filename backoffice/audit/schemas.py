"""Who an audit row names: a member of staff (from their login, never from a request's body) or the
platform itself, with the request it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Actor:
    name: str
    user_id: int | None = None  # None: the platform acted by itself (a callback, a job, a command)
    request_id: str | None = None
    client_addr: str | None = None


SYSTEM = Actor("system")


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    client_addr: str | None
