"""All SQL of staff identity: users, sessions, API tokens and failed logins."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row

from backoffice.staff.schemas import SessionRow, TokenRow, UserRow

_USER = """select id, username, roles, password_hash, must_change_password, failed_logins, locked_until,
                  disabled_at, created_at from staff_users"""


def insert_user(
    conn: psycopg.Connection, username: str, roles: list[str], password_hash: str, must_change: bool
) -> int:
    row = conn.execute(
        """insert into staff_users (username, roles, password_hash, must_change_password)
           values (%s, %s, %s, %s) returning id""",
        (username, roles, password_hash, must_change),
    ).fetchone()
    assert row is not None
    return int(row[0])


def user_by_name(conn: psycopg.Connection, username: str, lock: bool = False) -> UserRow | None:
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(_USER + " where username = %s" + (" for update" if lock else ""), (username,)).fetchone()


def user_by_id(conn: psycopg.Connection, user_id: int) -> UserRow | None:
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(_USER + " where id = %s", (user_id,)).fetchone()


def list_users(conn: psycopg.Connection) -> list[UserRow]:
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(_USER + " order by username").fetchall()


def set_password(conn: psycopg.Connection, user_id: int, password_hash: str, must_change: bool) -> None:
    conn.execute(
        """update staff_users set password_hash = %s, must_change_password = %s, password_changed_at = paygo_now(),
                  failed_logins = 0, locked_until = null where id = %s""",
        (password_hash, must_change, user_id),
    )


def set_disabled(conn: psycopg.Connection, user_id: int, disabled: bool) -> None:
    conn.execute(
        "update staff_users set disabled_at = case when %s then paygo_now() end where id = %s", (disabled, user_id)
    )


def record_failure(
    conn: psycopg.Connection, username: str, client_addr: str, lock_after: int, lock_for: timedelta
) -> None:
    """A failed login: counted against the address, and against the account (locked at ``lock_after``)."""
    conn.execute("insert into login_failures (username, client_addr) values (%s, %s)", (username, client_addr))
    # A lock that has run out starts the count again (else one more failure would lock it at once).
    conn.execute(
        """update staff_users
              set failed_logins = case when locked_until <= paygo_now() then 1 else failed_logins + 1 end,
                  locked_until = case
                      when (case when locked_until <= paygo_now() then 1 else failed_logins + 1 end) >= %s
                      then paygo_now() + %s
                      when locked_until <= paygo_now() then null
                      else locked_until end
            where username = %s""",
        (lock_after, lock_for, username),
    )


def failures_from(conn: psycopg.Connection, client_addr: str, since: datetime) -> int:
    row = conn.execute(
        "select count(*) from login_failures where client_addr = %s and at >= %s", (client_addr, since)
    ).fetchone()
    return int(row[0]) if row else 0


def record_success(conn: psycopg.Connection, user_id: int) -> None:
    conn.execute("update staff_users set failed_logins = 0, locked_until = null where id = %s", (user_id,))


def insert_session(
    conn: psycopg.Connection, token_hash: bytes, user_id: int, csrf_token: str, client_addr: str | None,
    user_agent: str | None,
) -> None:  # fmt: skip
    conn.execute(
        """insert into staff_sessions (token_hash, user_id, csrf_token, client_addr, user_agent)
           values (%s, %s, %s, %s, %s)""",
        (token_hash, user_id, csrf_token, client_addr, (user_agent or "")[:300]),
    )


def session(conn: psycopg.Connection, token_hash: bytes) -> SessionRow | None:
    """A session of an enabled user."""
    with conn.cursor(row_factory=class_row(SessionRow)) as cur:
        return cur.execute(
            """select s.user_id, u.username, u.roles, s.csrf_token, u.must_change_password, s.created_at,
                      s.last_seen_at
                 from staff_sessions s join staff_users u on u.id = s.user_id
                where s.token_hash = %s and u.disabled_at is null""",
            (token_hash,),
        ).fetchone()


def touch_session(conn: psycopg.Connection, token_hash: bytes) -> None:
    conn.execute("update staff_sessions set last_seen_at = paygo_now() where token_hash = %s", (token_hash,))


def delete_session(conn: psycopg.Connection, token_hash: bytes) -> None:
    conn.execute("delete from staff_sessions where token_hash = %s", (token_hash,))


def delete_sessions_of(conn: psycopg.Connection, user_id: int, keep: bytes | None = None) -> None:
    """End a user's sessions (all but ``keep``)."""
    conn.execute("delete from staff_sessions where user_id = %s and token_hash is distinct from %s", (user_id, keep))


_TOKEN_COLUMNS = "id, name, roles, created_by, created_at, last_used_at, revoked_at, owner_user_id"


def insert_token(
    conn: psycopg.Connection, name: str, token_hash: bytes, roles: list[str], created_by: str, owner_user_id: int
) -> int:
    row = conn.execute(
        """insert into api_tokens (name, token_hash, roles, created_by, owner_user_id)
           values (%s, %s, %s, %s, %s) returning id""",
        (name, token_hash, roles, created_by, owner_user_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def token(conn: psycopg.Connection, token_hash: bytes) -> TokenRow | None:
    """A token that has not been revoked, and whose owner (the person at the root of the chain of tokens
    that made it) is enabled: disabling a person also stops the integrations they set up, and those
    their tokens set up, until an admin issues new tokens."""
    with conn.cursor(row_factory=class_row(TokenRow)) as cur:
        return cur.execute(
            f"""select {_TOKEN_COLUMNS} from api_tokens t
                 where token_hash = %s and revoked_at is null
                   and exists (select 1 from staff_users s
                                where s.id = t.owner_user_id and s.disabled_at is null)""",
            (token_hash,),
        ).fetchone()


def touch_token(conn: psycopg.Connection, token_id: int) -> None:
    conn.execute("update api_tokens set last_used_at = paygo_now() where id = %s", (token_id,))


def list_tokens(conn: psycopg.Connection) -> list[TokenRow]:
    with conn.cursor(row_factory=class_row(TokenRow)) as cur:
        return cur.execute(f"select {_TOKEN_COLUMNS} from api_tokens order by id").fetchall()


def revoke_token(conn: psycopg.Connection, token_id: int) -> TokenRow | None:
    with conn.cursor(row_factory=class_row(TokenRow)) as cur:
        return cur.execute(
            f"""update api_tokens set revoked_at = paygo_now() where id = %s and revoked_at is null
               returning {_TOKEN_COLUMNS}""",
            (token_id,),
        ).fetchone()
