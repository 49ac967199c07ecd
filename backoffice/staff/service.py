"""Staff identity: passwords (argon2id), logins with lock-out, sessions with idle and absolute expiry,
API tokens for integrations. The entry point owns the transaction; nothing here commits.

Session cookies and API tokens are random 256-bit values; the database keeps only their SHA-256, so
a copy of the tables opens nothing. Passwords are hashed with argon2id (argon2-cffi's defaults);
an unknown user costs the same time as a wrong password, so timing tells nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from backoffice import clock
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.staff import repository
from backoffice.staff.schemas import ROLES, Staff

MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "pgt_"  # API tokens say what they are (secret scanners look for such prefixes)
TOUCH_EVERY = timedelta(seconds=60)
REFUSED = (
    "wrong user name or password (after repeated failures an account is locked for a few minutes: "
    "wait, or ask an administrator)"
)
RESERVED_NAMES = frozenset(
    {"system"}
)  # the platform's own name in the audit trail  # a session's last-seen time is written at most this often

_hasher = PasswordHasher()
# Verified against when the user does not exist, so that an unknown name takes as long as a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class StaffError(ValueError):
    """A refused account operation; the message says what to do."""


@dataclass(frozen=True)
class LoginRefused:
    """The login failed; ``reason`` is safe to show (it never says whether the name exists). Returned,
    not raised, so that the caller commits the failure that was counted."""

    reason: str


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _check_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if not roles or unknown:
        raise StaffError(f"roles must be some of {', '.join(ROLES)} (got {', '.join(unknown) or 'none'})")
    return sorted(set(roles))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def add_user(
    conn: psycopg.Connection, username: str, roles: list[str], actor: Actor, password: str | None = None
) -> str:
    """A new user holding ``roles``; returns the one-time password to hand over (changed at first login).
    With ``password`` (development data only) that password is kept and need not be changed."""
    name = username.strip().lower()
    if name in RESERVED_NAMES:
        raise StaffError(f"{name!r} is reserved (the audit trail names the platform so)")
    if repository.user_by_name(conn, name) is not None:
        raise StaffError(f"a user {name!r} exists already")
    chosen = password or secrets.token_urlsafe(12)
    _check_password(chosen)
    try:
        user_id = repository.insert_user(conn, name, _check_roles(roles), _hasher.hash(chosen), password is None)
    except psycopg.errors.CheckViolation:
        raise StaffError(f"{name!r} is not a valid user name (lower-case letters, digits, '.', '_', '-')") from None
    audit.record(conn, actor, "user-added", "staff_user", user_id, after={"username": name, "roles": roles})
    return chosen


def reset_password(conn: psycopg.Connection, username: str, actor: Actor, password: str | None = None) -> str:
    """A new one-time password for a user (a forgotten password); their sessions end. With ``password``
    (development data only) that password is set and need not be changed."""
    user = repository.user_by_name(conn, username.strip().lower())
    if user is None:
        raise StaffError(f"no user {username!r}")
    chosen = password or secrets.token_urlsafe(12)
    _check_password(chosen)
    repository.set_password(conn, user.id, _hasher.hash(chosen), must_change=password is None)
    repository.delete_sessions_of(conn, user.id)
    audit.record(conn, actor, "password-reset", "staff_user", user.id)
    return chosen


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool, actor: Actor) -> None:
    """Disable (or enable again) a user; a disabled user's sessions end at once."""
    user = repository.user_by_name(conn, username.strip().lower())
    if user is None:
        raise StaffError(f"no user {username!r}")
    repository.set_disabled(conn, user.id, disabled)
    if disabled:
        repository.delete_sessions_of(conn, user.id)
    audit.record(conn, actor, "user-disabled" if disabled else "user-enabled", "staff_user", user.id,
                 before={"disabled": user.disabled_at is not None}, after={"disabled": disabled})  # fmt: skip


@dataclass(frozen=True)
class NewSession:
    token: str  # for the cookie; only its digest is stored
    csrf_token: str
    must_change_password: bool


def login(
    conn: psycopg.Connection, settings: Settings, username: str, password: str, client_addr: str,
    user_agent: str | None,
) -> NewSession | LoginRefused:  # fmt: skip
    """Check a password and open a session, in the caller's transaction (commit it in either case: a
    failure is counted against the account and the address)."""
    name = username.strip().lower()[:64]
    now = clock.utc_now()
    window = timedelta(minutes=settings.login_lockout_minutes)
    if repository.failures_from(conn, client_addr, now - window) >= settings.login_address_max_failures:
        return LoginRefused("too many failed logins from this address: wait a few minutes and try again")
    user = repository.user_by_name(conn, name, lock=True)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        valid = user is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        valid = False
    # One answer for a wrong password, an unknown name and a locked account: none tells which names exist.
    if user is not None and user.locked_until is not None and user.locked_until > now:
        return LoginRefused(REFUSED)
    if not valid or user is None or user.disabled_at is not None:
        repository.record_failure(conn, name, client_addr, settings.login_max_failures, window)
        return LoginRefused(REFUSED)
    repository.record_success(conn, user.id)
    if _hasher.check_needs_rehash(user.password_hash):
        repository.set_password(conn, user.id, _hasher.hash(password), user.must_change_password)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    repository.insert_session(conn, digest(token), user.id, csrf, client_addr, user_agent)
    return NewSession(token, csrf, user.must_change_password)


def session_staff(
    conn: psycopg.Connection, settings: Settings, token: str, request_id: str | None, client_addr: str | None
) -> Staff | None:
    """The user of a session cookie, or None when it is unknown or has expired (an expired one is removed)."""
    hashed = digest(token)
    row = repository.session(conn, hashed)
    if row is None:
        return None
    now = clock.utc_now()
    idle = now - row.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
    if idle or now - row.created_at > timedelta(hours=settings.session_max_hours):
        repository.delete_session(conn, hashed)
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        repository.touch_session(conn, hashed)
    return Staff(row.user_id, row.username, frozenset(row.roles), "session", row.csrf_token,
                 row.must_change_password, request_id, client_addr, owner_id=row.user_id)  # fmt: skip


def logout(conn: psycopg.Connection, token: str) -> None:
    repository.delete_session(conn, digest(token))


def change_password(conn: psycopg.Connection, staff: Staff, current: str, new: str, keep_token: str) -> None:
    """Replace a user's password (after checking the current one); their other sessions end."""
    if staff.user_id is None:
        raise StaffError("an API token has no password")
    user = repository.user_by_id(conn, staff.user_id)
    assert user is not None
    try:
        _hasher.verify(user.password_hash, current)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise StaffError("the current password is not right") from None
    _check_password(new)
    if hmac.compare_digest(current.encode(), new.encode()):
        raise StaffError("choose a new password, not the current one")
    repository.set_password(conn, user.id, _hasher.hash(new), must_change=False)
    repository.delete_sessions_of(conn, user.id, keep=digest(keep_token))
    audit.record(conn, staff.actor, "password-changed", "staff_user", user.id)


def create_token(
    conn: psycopg.Connection, name: str, roles: list[str], actor: Actor, owner: int | str
) -> tuple[int, str]:
    """A new API token answering to ``owner`` (a user id or login: an enabled member of staff, who is
    disabled to stop it); returns (id, the token), which is shown once and never stored."""
    if not name.strip():
        raise StaffError("name the integration the token is for")
    user = (
        repository.user_by_id(conn, owner) if isinstance(owner, int) else repository.user_by_name(conn, owner.strip())
    )
    if user is None or user.disabled_at is not None:
        raise StaffError(f"a token answers to an enabled member of staff: {owner!r} is not one")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = repository.insert_token(conn, name.strip(), digest(token), _check_roles(roles), actor.name, user.id)
    audit.record(conn, actor, "token-created", "api_token", token_id, after={"name": name.strip(), "roles": roles})
    return token_id, token


def revoke_token(conn: psycopg.Connection, token_id: int, actor: Actor) -> None:
    revoked = repository.revoke_token(conn, token_id)
    if revoked is None:
        raise StaffError(f"no active API token {token_id}")
    audit.record(conn, actor, "token-revoked", "api_token", token_id, after={"name": revoked.name})


def token_staff(conn: psycopg.Connection, token: str, request_id: str | None, client_addr: str | None) -> Staff | None:
    row = repository.token(conn, digest(token)) if token.startswith(TOKEN_PREFIX) else None
    if row is None:
        return None
    if row.last_used_at is None or clock.utc_now() - row.last_used_at > TOUCH_EVERY:
        repository.touch_token(conn, row.id)
    return Staff(None, row.name, frozenset(row.roles), "token", request_id=request_id, client_addr=client_addr,
                 owner_id=row.owner_user_id)  # fmt: skip
