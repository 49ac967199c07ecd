"""``paygo users``: add a member of staff (a one-time password), disable them, API tokens."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import psycopg

from backoffice.config import Settings
from backoffice.staff import service


def _paygo(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAYGO_ENVIRONMENT": "test", "PAYGO_DATABASE_URL": settings.database_url}
    return subprocess.run([sys.executable, "-m", "paygo.cli", "users", *args], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_users_add_disable_and_tokens(settings: Settings, conn: psycopg.Connection) -> None:
    conn.autocommit = True  # each statement its own transaction: the command's updates must not wait on us
    added = _paygo(settings, "add", "Amina", "--role", "call_centre", "--role", "finance")
    assert added.returncode == 0, added.stderr
    password = re.search(r"one-time password: (\S+)", added.stdout)
    assert password, added.stdout
    row = conn.execute("select roles, must_change_password, password_hash from staff_users where username = 'amina'")
    roles, must_change, hashed = row.fetchone()  # type: ignore[misc]
    assert roles == ["call_centre", "finance"] and must_change and password.group(1) not in hashed
    with conn.transaction():
        first = service.login(conn, settings, "amina", password.group(1), "127.0.0.1", "cli-test")
    assert isinstance(first, service.NewSession) and first.must_change_password

    bad = _paygo(settings, "add", "bo", "--role", "superuser")
    assert bad.returncode == 1 and "roles must be some of" in bad.stdout + bad.stderr

    assert _paygo(settings, "disable", "amina").returncode == 0
    assert conn.execute("select disabled_at is not null from staff_users where username = 'amina'").fetchone() == (
        True,
    )
    assert conn.execute("select count(*) from staff_sessions").fetchone() == (0,)  # her session ended

    refused = _paygo(settings, "token", "erp", "--role", "finance", "--owner", "amina")  # disabled
    assert refused.returncode == 1 and "answers to an enabled member of staff" in refused.stdout + refused.stderr
    assert _paygo(settings, "enable", "amina").returncode == 0
    token = _paygo(settings, "token", "erp", "--role", "finance", "--owner", "amina")
    value = re.search(r"token (\d+) for erp: (pgt_\S+)", token.stdout)
    assert token.returncode == 0 and value, token.stdout
    assert service.token_staff(conn, value.group(2), None, None) is not None
    assert _paygo(settings, "revoke-token", value.group(1)).returncode == 0
    assert service.token_staff(conn, value.group(2), None, None) is None
    actors = {r[0] for r in conn.execute("select actor from audit_log")}
    assert len(actors) == 1 and actors.pop().startswith("cli:")
