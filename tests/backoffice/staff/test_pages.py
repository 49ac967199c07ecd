"""The login page and sessions over real HTTP: cookie flags, CSRF on every form post, security
headers, one-time passwords changed first, no open redirect, logout."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from devtools import demo_data
from paygo.web import create_app
from tests.support import count, serve
from tests.support.staff import PASSWORD, csrf_of, login, user


@pytest.fixture
def site(settings: Settings, conn: psycopg.Connection) -> Iterator[str]:
    demo_data.seed(conn, settings.secret_key, customers=2)
    conn.commit()
    with serve(create_app(settings)) as url:
        yield url


def test_login_sets_a_safe_cookie_and_every_answer_has_security_headers(settings: Settings, site: str) -> None:
    user(settings.database_url, "cara", "call_centre")
    with httpx.Client(base_url=site) as web:
        page = web.get("/login")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin" and len(page.headers["x-request-id"]) >= 8
        assert "<script" not in page.text
        done = login(web, "cara")
        assert done.status_code == 303 and done.headers["location"] == "/"
        cookie = done.headers["set-cookie"]
        assert "paygo_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure
        units = web.get("/")
        assert units.status_code == 200 and "cara" in units.text and units.headers["cache-control"] == "no-store"
    assert httpx.get(f"{site}/health").json() == {"status": "ok"}


def test_a_form_post_without_the_sessions_csrf_token_is_refused(
    settings: Settings, conn: psycopg.Connection, site: str
) -> None:
    user(settings.database_url, "cara", "call_centre")
    account, token_id = conn.execute(
        "select c.account_number, t.id from tokens t join contracts c on c.id = t.contract_id limit 1"
    ).fetchone()  # type: ignore[misc]
    queued = count(conn, "select count(*) from outbox")
    with httpx.Client(base_url=site) as web:
        login(web, "cara")
        csrf = csrf_of(web.get(f"/contracts/{account}").text)
        resend = f"/contracts/{account}/tokens/{token_id}/resend"
        assert web.post(resend, data={}).status_code == 403
        assert web.post(resend, data={"csrf_token": "forged"}).status_code == 403
        assert count(conn, "select count(*) from outbox") == queued  # nothing queued again
        done = web.post(resend, data={"csrf_token": csrf})
        assert done.status_code == 303 and "resent=" in done.headers["location"]
        assert count(conn, "select count(*) from outbox") == queued + 2  # its SMS and its command
        # Logging out is a form post too; afterwards the cookie opens nothing.
        assert web.post("/logout", data={}).status_code == 403
        assert web.post("/logout", data={"csrf_token": csrf}).status_code == 303
        assert web.get("/").status_code == 303


def test_a_one_time_password_must_be_changed_first(settings: Settings, site: str) -> None:
    one_time = user(settings.database_url, "newbie", "finance", one_time=True)
    with httpx.Client(base_url=site) as web:
        assert login(web, "newbie", one_time).headers["location"] == "/account/password"
        assert web.get("/payments").headers["location"] == "/account/password"
        form = web.get("/account/password")
        assert "one-time password" in form.text
        csrf = csrf_of(form.text)
        differ = web.post("/account/password", data={"csrf_token": csrf, "current": one_time, "new": PASSWORD,
                                                     "again": PASSWORD + "!"})  # fmt: skip
        assert differ.status_code == 400 and "differ" in differ.text
        done = web.post("/account/password", data={"csrf_token": csrf, "current": one_time, "new": PASSWORD,
                                                   "again": PASSWORD})  # fmt: skip
        assert done.status_code == 303
        assert web.get("/payments").status_code == 200


def test_login_refusals_say_what_to_do_and_never_redirect_off_site(settings: Settings, site: str) -> None:
    user(settings.database_url, "fred", "finance")
    with httpx.Client(base_url=site) as web:
        wrong = login(web, "fred", "not the password")
        assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
        form = web.get("/login")  # a post without the form's own token (cross-site) is refused
        assert web.post("/login", data={"username": "fred", "password": PASSWORD, "login_csrf": "x"}).status_code == 400
        assert form.status_code == 200
        for target, lands in (("//evil.example/x", "/"), ("https://evil.example", "/"), ("/kpi?x=1", "/kpi?x=1")):
            web.cookies.clear()
            page = web.get("/login", params={"next": target})
            token = page.text.split('name="login_csrf" value="')[1].split('"')[0]
            done = web.post("/login", data={"username": "fred", "password": PASSWORD, "login_csrf": token,
                                            "next": target})  # fmt: skip
            assert done.headers["location"] == lands
    # A page asked for without a login sends you to the login page and back.
    first = httpx.get(f"{site}/payments?status=unmatched", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=%2Fpayments%3Fstatus%3Dunmatched"


def test_a_role_that_may_not_open_a_page_is_told_which_role_it_needs(settings: Settings, site: str) -> None:
    user(settings.database_url, "cara", "call_centre")
    with httpx.Client(base_url=site) as web:
        login(web, "cara")
        kpi = web.get("/kpi")
        assert kpi.status_code == 403 and "finance or viewer (read only)" in kpi.text and "cara" in kpi.text
        api = web.get("/api/kpi/latest")
        assert api.status_code == 403 and "finance" in api.json()["detail"]


def test_an_administrator_browses_the_audit_trail(settings: Settings, conn: psycopg.Connection, site: str) -> None:
    user(settings.database_url, "ada", "admin")
    user(settings.database_url, "cara", "call_centre")
    with httpx.Client(base_url=site) as web:
        login(web, "ada")
        page = web.get("/audit", params={"entity": "staff_user"})
        assert page.status_code == 200 and "user-added" in page.text and "test-setup" in page.text
        assert "cara" in page.text and "call_centre" in page.text  # the row's after, as JSON
        assert "Nothing recorded for this filter" in web.get("/audit", params={"actor": "nobody"}).text
        api = web.get("/api/audit", params={"entity": "staff_user"}).json()
        assert {r["action"] for r in api} == {"user-added"} and len(api) == 2


def test_an_expired_session_is_refused_and_removed(settings: Settings, conn: psycopg.Connection, site: str) -> None:
    user(settings.database_url, "cara", "call_centre")
    with httpx.Client(base_url=site) as web:
        login(web, "cara")
        assert web.get("/").status_code == 200
        conn.execute("update staff_sessions set last_seen_at = now() - interval '1 day'")
        conn.commit()
        assert web.get("/").status_code == 303
    assert count(conn, "select count(*) from staff_sessions") == 0


def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    settings: Settings, conn: psycopg.Connection, site: str
) -> None:
    user(settings.database_url, "fred", "finance")
    proxied = {"X-Forwarded-For": "203.0.113.5", "X-Request-Id": "proxy-request-0001"}
    with httpx.Client(base_url=site, headers=proxied) as web:  # we are 127.0.0.1: the trusted proxy
        wrong = login(web, "fred", "not the password")
        assert wrong.headers["x-request-id"] != "proxy-request-0001"  # ours, never the caller's
    assert conn.execute("select client_addr from login_failures").fetchall() == [("203.0.113.5",)]
    conn.commit()
    untrusting = settings.model_copy(update={"trusted_proxies": "192.0.2.1"})
    with serve(create_app(untrusting)) as other, httpx.Client(base_url=other, headers=proxied) as web:
        login(web, "fred", "not the password")
    assert conn.execute("select client_addr from login_failures order by at").fetchall()[-1] == ("127.0.0.1",)
