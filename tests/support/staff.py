"""Staff for the tests: API tokens and users holding given roles, and logging in through the real form."""

from __future__ import annotations

import re

import httpx
import psycopg

from backoffice.audit.schemas import Actor
from backoffice.staff import repository, service

TEST_ACTOR = Actor("test-setup")
TOKEN_OWNER = "token-owner"  # the member of staff the tests' API tokens answer to
PASSWORD = "correct horse battery staple"


def api_token(database_url: str, *roles: str, name: str = "") -> dict[str, str]:
    """Headers carrying a new API token with ``roles`` (committed in the test's database)."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        if repository.user_by_name(conn, TOKEN_OWNER) is None:
            service.add_user(conn, TOKEN_OWNER, ["admin"], TEST_ACTOR)
        _, token = service.create_token(conn, name or f"test-{'-'.join(roles)}", list(roles), TEST_ACTOR, TOKEN_OWNER)
    return {"Authorization": f"Bearer {token}"}


def user(database_url: str, username: str, *roles: str, password: str = PASSWORD, one_time: bool = False) -> str:
    """A user holding ``roles``; returns the password (a one-time one to change, with ``one_time``)."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        return service.add_user(conn, username, list(roles), TEST_ACTOR, None if one_time else password)


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    """Log in through the login form as a browser does (its double-submit token, then the post)."""
    form = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert token, form.text
    return client.post("/login", data={"username": username, "password": password, "login_csrf": token.group(1)})


def csrf_of(page: str) -> str:
    """The session's CSRF token from a page's forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no form with a CSRF token on this page"
    return found.group(1)
