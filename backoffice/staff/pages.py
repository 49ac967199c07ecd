"""Staff pages: log in, log out, change a password; the audit trail and the staff's logins and API tokens
(administrators)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice.audit import repository as audit
from backoffice.deps import DbConn, RowId, SettingsDep
from backoffice.staff import repository, service
from backoffice.staff.guard import ANY_STAFF, SESSION_COOKIE, Allow, CurrentStaff, Public, client_addr
from backoffice.staff.schemas import ROLE_NAMES, ROLES
from backoffice.templating import templates

LOGIN_CSRF_COOKIE = "paygo_login"  # double-submit token of the login form (there is no session yet)

login_router = APIRouter(tags=["staff pages"], dependencies=[Depends(Public("the login page itself"))])
account_router = APIRouter(tags=["staff pages"], dependencies=[Depends(Allow(*ANY_STAFF, before_password_change=True))])
admin_router = APIRouter(tags=["staff pages"], dependencies=[Depends(Allow("admin"))])


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme): no open redirect after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_form(request: Request, next_: str, error: str | None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    page = templates.TemplateResponse(request, "login.html", {"next": _safe_next(next_), "error": error,
                                                               "login_csrf": token}, status_code=status)  # fmt: skip
    page.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/login")  # fmt: skip
    page.headers["cache-control"] = "no-store"
    return page


@login_router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:  # noqa: A002 - the query parameter's name
    return _login_form(request, next, None)


@login_router.post("/login")
def login(
    request: Request, conn: DbConn, settings: SettingsDep, username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)], login_csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:  # fmt: skip
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), login_csrf.encode()):
        return _login_form(request, next, "The login form expired: please try again.", 400)
    with conn.transaction():  # committed whatever the outcome: a failure counts towards the lock-out
        new = service.login(conn, settings, username, password, client_addr(request),
                            request.headers.get("user-agent"))  # fmt: skip
    if isinstance(new, service.LoginRefused):
        return _login_form(request, next, new.reason, 401)
    target = "/account/password" if new.must_change_password else _safe_next(next)
    done = RedirectResponse(target, status_code=303)
    done.set_cookie(SESSION_COOKIE, new.token, httponly=True, samesite="lax", secure=request.url.scheme == "https",
                    max_age=settings.session_max_hours * 3600, path="/")  # fmt: skip
    done.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return done


@account_router.post("/logout")
def logout(request: Request, conn: DbConn, staff: CurrentStaff) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with conn.transaction():
            service.logout(conn, token)
    done = RedirectResponse("/login", status_code=303)
    done.delete_cookie(SESSION_COOKIE, path="/")
    return done


@account_router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, staff: CurrentStaff, changed: bool = False) -> Response:
    return templates.TemplateResponse(request, "password.html", {"error": None, "changed": changed})


@account_router.post("/account/password")
def change_password(
    request: Request, conn: DbConn, staff: CurrentStaff, current: Annotated[str, Form(max_length=1000)],
    new: Annotated[str, Form(max_length=1000)], again: Annotated[str, Form(max_length=1000)],
) -> Response:  # fmt: skip
    error = None
    if new != again:
        error = "The two new passwords differ."
    else:
        try:
            with conn.transaction():
                service.change_password(conn, staff, current, new, request.cookies.get(SESSION_COOKIE, ""))
        except service.StaffError as err:
            error = str(err)
    if error:
        return templates.TemplateResponse(request, "password.html", {"error": error, "changed": False},
                                          status_code=400)  # fmt: skip
    return RedirectResponse("/account/password?changed=true", status_code=303)


@admin_router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request, conn: DbConn, actor: str | None = None, entity: str | None = None,
    entity_id: str | None = None, before: int | None = None,
) -> Response:  # fmt: skip
    rows = audit.browse(conn, actor=actor or None, entity=entity or None, entity_id=entity_id or None,
                        before_id=before, limit=100)  # fmt: skip
    return templates.TemplateResponse(
        request, "audit.html", {"rows": rows, "actor": actor or "", "entity": entity or "",
                                "entity_id": entity_id or ""},
    )  # fmt: skip


# --- Staff logins and API tokens (administrators): the page /staff and its forms ------------------------
# A one-time password or a new token is shown once, in the answer to the post that made it (never in an
# address, never stored): the answer is the page itself, with no-store (backoffice/security.py).


def _staff_page(
    request: Request, conn: psycopg.Connection, *, done: str | None = None, error: str | None = None,
    secret: tuple[str, str] | None = None, status: int = 200,
) -> Response:  # fmt: skip
    return templates.TemplateResponse(
        request, "staff.html",
        {"users": repository.list_users(conn), "tokens": repository.list_tokens(conn), "roles": ROLES,
         "role_names": ROLE_NAMES, "done": done, "error": error, "secret": secret},
        status_code=status,
    )  # fmt: skip


def _staff_act(request: Request, conn: psycopg.Connection, action: Callable[[], tuple[str, tuple[str, str] | None]],
               ) -> Response:  # fmt: skip
    """Run an account operation in its own transaction; the page again with what it did, or why not."""
    try:
        with conn.transaction():
            done, secret = action()
    except service.StaffError as err:
        return _staff_page(request, conn, error=str(err), status=400)
    if secret is None:  # nothing to show once: back to the page by GET, so a reload does not post again
        return RedirectResponse(f"/staff?{urlencode({'done': done})}", status_code=303)
    return _staff_page(request, conn, done=done, secret=secret)


@admin_router.get("/staff", response_class=HTMLResponse)
def staff_page(request: Request, conn: DbConn, done: Annotated[str, Query(max_length=300)] = "") -> Response:
    return _staff_page(request, conn, done=done or None)


@admin_router.post("/staff/users")
def add_user_from_page(
    request: Request, conn: DbConn, staff: CurrentStaff, username: Annotated[str, Form(max_length=64)] = "",
    roles: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies a default
) -> Response:  # fmt: skip
    def act() -> tuple[str, tuple[str, str] | None]:
        if not username.strip():
            raise service.StaffError("give the new user's login")
        password = service.add_user(conn, username, roles, staff.actor)
        name = username.strip().lower()
        return f"Added {name} ({', '.join(sorted(set(roles)))}).", (f"One-time password for {name}", password)

    return _staff_act(request, conn, act)


@admin_router.post("/staff/users/{username}/reset")
def reset_from_page(request: Request, username: str, conn: DbConn, staff: CurrentStaff) -> Response:
    def act() -> tuple[str, tuple[str, str] | None]:
        password = service.reset_password(conn, username, staff.actor)
        return f"{username}'s password is reset and their sessions ended.", (f"One-time password for {username}",
                                                                              password)  # fmt: skip

    return _staff_act(request, conn, act)


@admin_router.post("/staff/users/{username}/disabled")
def disable_from_page(
    request: Request, username: str, conn: DbConn, staff: CurrentStaff,
    disabled: Annotated[str, Form(max_length=5)] = "",
) -> Response:  # fmt: skip
    def act() -> tuple[str, tuple[str, str] | None]:
        if disabled not in ("true", "false"):
            raise service.StaffError("say whether to disable or enable the user")
        if disabled == "true" and staff.user_id is not None and username.strip().lower() == staff.name:
            raise service.StaffError("you cannot disable yourself (ask another administrator)")
        service.set_disabled(conn, username, disabled == "true", staff.actor)
        return (f"{username} disabled: their sessions and API tokens stopped." if disabled == "true"
                else f"{username} enabled."), None  # fmt: skip

    return _staff_act(request, conn, act)


@admin_router.post("/staff/tokens")
def create_token_from_page(
    request: Request, conn: DbConn, staff: CurrentStaff, name: Annotated[str, Form(max_length=100)] = "",
    roles: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies a default
) -> Response:  # fmt: skip
    def act() -> tuple[str, tuple[str, str] | None]:
        if staff.owner_id is None:
            raise service.StaffError("this token answers to no one: ask an administrator for a new one")
        if any(c < " " or c == "\x7f" for c in name):
            raise service.StaffError("the token's name holds a control character")
        token_id, token = service.create_token(conn, name, roles, staff.actor, staff.owner_id)
        return f"API token #{token_id} for {name.strip()} created.", (f"API token #{token_id} ({name.strip()})", token)

    return _staff_act(request, conn, act)


@admin_router.post("/staff/tokens/{token_id}/revoke")
def revoke_token_from_page(request: Request, token_id: RowId, conn: DbConn, staff: CurrentStaff) -> Response:
    def act() -> tuple[str, tuple[str, str] | None]:
        service.revoke_token(conn, token_id, staff.actor)
        return f"API token #{token_id} revoked: it stopped working.", None

    return _staff_act(request, conn, act)
