"""The administrator's staff page in Debian's chromium (issue 26), a screenshot per step: adding a login
shows its one-time password once, a reset gives a new one and ends the person's sessions, disabling ends
them at once; an API token is shown once, works, and stops when revoked. Finance is refused the page and
its forged posts change nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from paygo.web import create_app
from tests.support import count, serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.staff import csrf_of, login, user

pytestmark = pytest.mark.browser


@pytest.fixture
def site(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings), "the web app") as url:
        yield url


def _logged_in(site: str, name: str, password: str) -> httpx.Client:
    web = httpx.Client(base_url=site)
    assert login(web, name, password).status_code == 303
    return web


def test_an_administrator_manages_logins_and_tokens_in_chromium(
    site: str, settings: Settings, conn: psycopg.Connection
) -> None:
    user(settings.database_url, "ada", "admin")
    steps = Steps("admin manages staff logins and tokens")
    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "ada", start="/staff")
        page.wait_for_url("**/staff")
        steps.shot(page, "the staff page")

        page.fill("#add-user input[name=username]", "Nora")
        page.check("#add-user input[value=finance]")
        with page.expect_navigation():
            page.click("#add-user button")
        assert "Added nora (finance)" in page.inner_text("#done")
        first = page.inner_text("#secret-value")
        assert len(first) >= 12
        steps.shot(page, "a new login and its one-time password")
        # Nora logs in with it (and must choose her own password first).
        nora = _logged_in(site, "nora", first)
        assert nora.get("/payments/waiting").headers["location"] == "/account/password"
        page.reload()  # shown once: a reload is a GET of the page, which has no secret
        assert page.locator("#secret").count() == 0

        # A reset gives a new one-time password and ends Nora's session.
        with page.expect_navigation():
            page.click("#user-nora >> text=Reset password")
        second = page.inner_text("#secret-value")
        assert second != first and "sessions ended" in page.inner_text("#done")
        steps.shot(page, "reset shows a new one-time password")
        assert nora.get("/account/password").headers["location"].startswith("/login")

        # Disabling ends her sessions at once.
        nora = _logged_in(site, "nora", second)
        with page.expect_navigation():
            page.click("#user-nora >> text=Disable")
        assert "nora disabled" in page.inner_text("#done") and "disabled" in page.inner_text("#user-nora")
        steps.shot(page, "disabled")
        assert nora.get("/account/password").headers["location"].startswith("/login")
        assert login(httpx.Client(base_url=site), "nora", second).status_code == 401

        # An API token: shown once, works for its roles, stops when revoked.
        page.fill("#add-token input[name=name]", "bank feed")
        page.check("#add-token input[value=finance]")
        with page.expect_navigation():
            page.click("#add-token button")
        token = page.inner_text("#secret-value")
        assert token.startswith("pgt_")
        steps.shot(page, "a new API token shown once")
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{site}/api/v1/payments/unmatched", headers=bearer).status_code == 200
        token_id = count(conn, "select id from api_tokens where name = 'bank feed'")
        conn.commit()
        with page.expect_navigation():
            page.click(f"#token-{token_id} >> text=Revoke")
        assert f"API token #{token_id} revoked" in page.inner_text("#done")
        steps.shot(page, "token revoked")
        assert httpx.get(f"{site}/api/v1/payments/unmatched", headers=bearer).status_code == 401

        # A bad name is explained on the page.
        page.fill("#add-user input[name=username]", "Bad Name!")
        page.check("#add-user input[value=viewer]")
        with page.expect_navigation():
            page.click("#add-user button")
        assert "not a valid user name" in page.inner_text("#error")
        steps.shot(page, "a bad login name is explained")
        assert browsing.outside == []
    actions = conn.execute("select action from audit_log where actor = 'ada' order by id").fetchall()
    assert [a for (a,) in actions] == ["user-added", "password-reset", "user-disabled", "token-created",
                                       "token-revoked"]  # fmt: skip


def test_finance_is_refused_the_staff_page_and_changes_nothing(
    site: str, settings: Settings, conn: psycopg.Connection
) -> None:
    user(settings.database_url, "fred", "finance")
    user(settings.database_url, "vic", "viewer")
    before = count(conn, "select count(*) from staff_users"), count(conn, "select count(*) from api_tokens")
    conn.commit()
    with httpx.Client(base_url=site) as web:
        login(web, "fred")
        assert web.get("/staff").status_code == 403
        csrf = csrf_of(web.get("/account/password").text)
        for path, form in (("/staff/users", {"username": "mallory", "roles": "admin"}),
                           ("/staff/tokens", {"name": "mine", "roles": "admin"}), ("/staff/users/vic/reset", {}),
                           ("/staff/users/vic/disabled", {"disabled": "true"})):  # fmt: skip
            assert web.post(path, data={"csrf_token": csrf, **form}).status_code == 403, path
    assert (count(conn, "select count(*) from staff_users"), count(conn, "select count(*) from api_tokens")) == before
    assert count(conn, "select count(*) from staff_users where disabled_at is not null") == 0
