"""Staff pages: log in, log out, change a password; the audit trail (administrators)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backoffice.audit import repository as audit
from backoffice.deps import DbConn, SettingsDep
from backoffice.staff import service
from backoffice.staff.guard import ANY_STAFF, SESSION_COOKIE, Allow, CurrentStaff, Public, client_addr
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
