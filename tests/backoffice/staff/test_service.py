"""Staff identity in the database: argon2id hashes, lock-out per account and per address, sessions
that expire, one-time passwords, API tokens stored hashed and revocable."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.staff import service

ADMIN = Actor("test-admin")


def _login(
    conn: psycopg.Connection, settings: Settings, name: str, password: str, addr: str = "10.0.0.1"
) -> service.NewSession:
    with conn.transaction():
        done = service.login(conn, settings, name, password, addr, "pytest")
    assert isinstance(done, service.NewSession), done
    return done


def _refused(conn: psycopg.Connection, settings: Settings, name: str, password: str, addr: str = "10.0.0.1") -> str:
    with conn.transaction():
        done = service.login(conn, settings, name, password, addr, "pytest")
    assert isinstance(done, service.LoginRefused), f"{name} logged in"
    return done.reason


def test_passwords_are_argon2id_and_one_time_passwords_must_be_changed(
    settings: Settings, conn: psycopg.Connection
) -> None:
    with conn.transaction():
        one_time = service.add_user(conn, "Amina", ["call_centre"], ADMIN)
    stored = conn.execute("select username, password_hash, must_change_password from staff_users").fetchone()
    assert stored is not None and stored[0] == "amina" and stored[1].startswith("$argon2id$") and stored[2]
    assert one_time not in stored[1]
    new = _login(conn, settings, "amina", one_time)
    assert new.must_change_password
    staff = service.session_staff(conn, settings, new.token, None, None)
    assert staff is not None and staff.must_change_password and staff.roles == {"call_centre"}
    with conn.transaction():
        with pytest.raises(service.StaffError, match="at least 12"):
            service.change_password(conn, staff, one_time, "short", new.token)
        service.change_password(conn, staff, one_time, "a much longer passphrase", new.token)
    assert not _login(conn, settings, "amina", "a much longer passphrase").must_change_password
    assert "wrong user name or password" in _refused(conn, settings, "amina", one_time)
    with pytest.raises(service.StaffError, match="exists"), conn.transaction():
        service.add_user(conn, "amina", ["viewer"], ADMIN)
    with pytest.raises(service.StaffError, match="roles"), conn.transaction():
        service.add_user(conn, "bo", ["superuser"], ADMIN)
    with pytest.raises(service.StaffError, match="reserved"), conn.transaction():
        service.add_user(conn, "System", ["viewer"], ADMIN)  # the platform's name in the audit trail


def test_an_account_locks_after_repeated_failures_and_an_unknown_name_says_the_same(
    settings: Settings, conn: psycopg.Connection
) -> None:
    with conn.transaction():
        service.add_user(conn, "fred", ["finance"], ADMIN, "fred's long password")
    assert _refused(conn, settings, "nobody", "x") == _refused(conn, settings, "fred", "wrong")  # tells nothing
    for _ in range(settings.login_max_failures - 1):
        _refused(conn, settings, "fred", "still wrong", addr="10.0.0.2")
    assert "locked" in _refused(conn, settings, "fred", "fred's long password", addr="10.0.0.3")  # even the right one
    assert _refused(conn, settings, "fred", "fred's long password") == _refused(conn, settings, "nobody", "x")
    conn.execute("update staff_users set locked_until = now() - interval '1 second' where username = 'fred'")
    conn.commit()
    _refused(conn, settings, "fred", "one more slip", addr="10.0.0.4")  # a lock run out counts from one again
    assert _login(conn, settings, "fred", "fred's long password", addr="10.0.0.3").token


def test_an_address_that_keeps_failing_is_refused(settings: Settings, conn: psycopg.Connection) -> None:
    small = settings.model_copy(update={"login_address_max_failures": 3})
    with conn.transaction():
        service.add_user(conn, "vera", ["viewer"], ADMIN, "vera's long password")
    for name in ("a", "b", "c"):  # a different name each time: per-account lock-out would not catch it
        _refused(conn, small, name, "guess", addr="192.0.2.9")
    assert "this address" in _refused(conn, small, "vera", "vera's long password", addr="192.0.2.9")
    assert _login(conn, small, "vera", "vera's long password", addr="192.0.2.10").token


def test_sessions_expire_when_idle_and_at_their_age_limit_and_disabling_ends_them(
    settings: Settings, conn: psycopg.Connection
) -> None:
    with conn.transaction():
        service.add_user(conn, "cara", ["call_centre"], ADMIN, "cara's long password")
    idle, old, live = (_login(conn, settings, "cara", "cara's long password") for _ in range(3))
    stored = conn.execute("select token_hash from staff_sessions").fetchall()
    assert all(bytes(h) == service.digest(t.token) for (h,), t in zip(stored, (idle, old, live), strict=True))
    conn.execute("update staff_sessions set last_seen_at = now() - %s where token_hash = %s",
                 (timedelta(minutes=settings.session_idle_minutes + 1), service.digest(idle.token)))  # fmt: skip
    conn.execute("update staff_sessions set created_at = now() - %s where token_hash = %s",
                 (timedelta(hours=settings.session_max_hours, minutes=1), service.digest(old.token)))  # fmt: skip
    conn.commit()
    assert service.session_staff(conn, settings, idle.token, None, None) is None
    assert service.session_staff(conn, settings, old.token, None, None) is None
    assert service.session_staff(conn, settings, live.token, None, None) is not None
    assert conn.execute("select count(*) from staff_sessions").fetchone() == (1,)  # expired ones are gone
    with conn.transaction():
        service.set_disabled(conn, "cara", True, ADMIN)
    assert service.session_staff(conn, settings, live.token, None, None) is None
    assert "wrong user name or password" in _refused(conn, settings, "cara", "cara's long password")


def test_api_tokens_are_stored_hashed_and_revocable(settings: Settings, conn: psycopg.Connection) -> None:
    with conn.transaction():
        service.add_user(conn, "ada", ["admin"], ADMIN)
        token_id, token = service.create_token(conn, "erp", ["finance"], ADMIN, "ada")
    assert token.startswith("pgt_")
    assert conn.execute(
        "select count(*) from api_tokens where token_hash = %s", (service.digest(token),)
    ).fetchone() == (1,)
    raw = conn.execute("select row_to_json(t)::text from api_tokens t").fetchone()
    assert raw is not None and token not in raw[0] and token[4:] not in raw[0]
    staff = service.token_staff(conn, token, "req-1", "10.1.1.1")
    assert staff is not None and staff.roles == {"finance"} and staff.actor.name == "token:erp"
    assert service.token_staff(conn, token + "x", None, None) is None
    with conn.transaction():
        service.revoke_token(conn, token_id, ADMIN)
    assert service.token_staff(conn, token, None, None) is None
    actions = [r[0] for r in conn.execute("select action from audit_log order by id")]
    assert actions == ["user-added", "token-created", "token-revoked"]


def test_a_disabled_makers_api_tokens_stop_working(settings: Settings, conn: psycopg.Connection) -> None:
    with conn.transaction():
        service.add_user(conn, "ada", ["admin"], ADMIN)
        _, token = service.create_token(conn, "erp", ["finance"], Actor("ada"), "ada")
    assert service.token_staff(conn, token, None, None) is not None
    with conn.transaction():
        service.set_disabled(conn, "ada", True, ADMIN)
    assert service.token_staff(conn, token, None, None) is None
    with conn.transaction():
        service.set_disabled(conn, "ada", False, ADMIN)
    assert service.token_staff(conn, token, None, None) is not None
