"""Roles, and the member of staff a request is made by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from backoffice.audit.schemas import Actor

Role = Literal["admin", "finance", "call_centre", "field_agent", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "finance", "call_centre", "field_agent", "viewer")
ROLE_NAMES: dict[str, str] = {
    "admin": "administrator",
    "finance": "finance",
    "call_centre": "call centre",
    "field_agent": "field agent",
    "viewer": "viewer (read only)",
}


@dataclass(frozen=True)
class Staff:
    """Who is asking: a logged-in user (``via`` "session") or an integration's API token ("token")."""

    user_id: int | None  # None for an API token
    name: str
    roles: frozenset[str]
    via: Literal["session", "token"]
    csrf_token: str | None = None  # sessions only: every form post must carry it
    must_change_password: bool = False
    request_id: str | None = None
    client_addr: str | None = None
    # The person this staff member answers to: the user of a session, the owner of an API token (a token
    # made by this one gets the same owner, so disabling that person stops the whole chain).
    owner_id: int | None = None

    def holds(self, allowed: frozenset[str]) -> bool:
        """An administrator may do anything; everyone else needs one of the allowed roles."""
        return "admin" in self.roles or bool(self.roles & allowed)

    @property
    def actor(self) -> Actor:
        """The name written to the audit trail: the login, never a field of the request."""
        name = self.name if self.via == "session" else f"token:{self.name}"
        return Actor(name, self.user_id, self.request_id, self.client_addr)


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    roles: list[str]
    password_hash: str
    must_change_password: bool
    failed_logins: int
    locked_until: datetime | None
    disabled_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class SessionRow:
    user_id: int
    username: str
    roles: list[str]
    csrf_token: str
    must_change_password: bool
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class TokenRow:
    id: int
    name: str
    roles: list[str]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    owner_user_id: int | None  # the person the token answers to (None: none, it does not work)
