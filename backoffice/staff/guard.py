"""The guard every staff route declares: ``Allow(*roles)`` on its router (or ``Public(reason)`` for a
door that carries its own proof, such as a provider callback). The handler receives the member of
staff (``CurrentStaff``) and never decides who may call it.

A request is made by a session (the ``paygo_session`` cookie of a login; a form post must carry the
session's CSRF token) or by an API token (``Authorization: Bearer pgt_…``). Refusals: an API route
answers 401 or 403 with JSON; a page redirects to the login page, or says which role it needs.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from backoffice.deps import DbConn, SettingsDep
from backoffice.security import client_address
from backoffice.staff import service
from backoffice.staff.schemas import ROLE_NAMES, ROLES, Role, Staff
from backoffice.templating import templates

SESSION_COOKIE = "paygo_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANY_STAFF: tuple[Role, ...] = ROLES


class NotAuthenticated(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, staff: Staff, allowed: Iterable[str]) -> None:
        self.staff, self.allowed = staff, sorted(allowed)


class MustChangePassword(Exception):
    pass


class CsrfRefused(Exception):
    pass


def client_addr(request: Request) -> str:
    """The caller's address, as the trusted proxies report it (backoffice.security.client_address)."""
    return client_address(request, request.app.state.settings) or "unknown"


def authenticate(request: Request, conn: DbConn, settings: SettingsDep) -> Staff:
    """Who is asking (from the session cookie or the bearer token), or NotAuthenticated."""
    request_id = getattr(request.state, "request_id", None)
    addr = client_addr(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise NotAuthenticated("use 'Authorization: Bearer <API token>'")
    cookie = request.cookies.get(SESSION_COOKIE)
    # Its own transaction, committed now (an expired session's removal too, before the refusal): the
    # handler's own transaction then really is one.
    with conn.transaction():
        if header is not None:
            staff = service.token_staff(conn, header.partition(" ")[2].strip(), request_id, addr)
        else:
            staff = service.session_staff(conn, settings, cookie, request_id, addr) if cookie else None
    if staff is None:
        raise NotAuthenticated("unknown or revoked API token" if header is not None else
                               "log in first (or your session has expired)")  # fmt: skip
    request.state.staff = staff
    return staff


async def _checked(request: Request, staff: Annotated[Staff, Depends(authenticate)]) -> Staff:
    """A form post (or any unsafe request) of a session must carry the session's CSRF token, as a form
    field ``csrf_token`` or an ``X-CSRF-Token`` header; a bearer token is not sent by browsers."""
    if request.method in SAFE_METHODS or staff.via == "token":
        return staff
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or staff.csrf_token is None or not hmac.compare_digest(sent.encode(), staff.csrf_token.encode()):
        raise CsrfRefused()
    return staff


class Allow:
    """A router's (or a route's) rule: staff holding one of ``roles`` (administrators always).
    ``before_password_change``: allowed while the user still has to change a one-time password."""

    def __init__(self, *roles: Role, before_password_change: bool = False) -> None:
        if not roles or set(roles) - set(ROLES):
            raise ValueError(f"roles must be some of {ROLES}")
        self.roles = frozenset(roles)
        self.before_password_change = before_password_change

    def __call__(self, staff: Annotated[Staff, Depends(_checked)]) -> Staff:
        if staff.must_change_password and not self.before_password_change:
            raise MustChangePassword()
        if not staff.holds(self.roles):
            raise Forbidden(staff, self.roles)
        return staff

    def __repr__(self) -> str:
        return f"Allow({', '.join(sorted(self.roles))})"


class Public:
    """A door open without a staff login, and why (a callback proves its origin by its own means)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __call__(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"Public({self.reason!r})"


CurrentStaff = Annotated[Staff, Depends(authenticate)]


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "authorization" in request.headers


def _page(request: Request, status: int, title: str, message: str) -> Response:
    return templates.TemplateResponse(request, "refused.html", {"title": title, "message": message},
                                      status_code=status)  # fmt: skip


def install(app: FastAPI) -> None:
    """The answers to refused requests: JSON for the API, a login redirect or a plain page for people."""

    @app.exception_handler(NotAuthenticated)
    def _not_authenticated(request: Request, err: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": str(err)}, 401, headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    def _forbidden(request: Request, err: Forbidden) -> Response:
        needs = " or ".join(ROLE_NAMES[r] for r in err.allowed)
        holds = ", ".join(ROLE_NAMES.get(r, r) for r in sorted(err.staff.roles))
        message = (
            f"This needs the {needs} role; you are {err.staff.name} ({holds}). Ask an administrator if you need it."
        )
        if _is_api(request):
            return JSONResponse({"detail": message}, 403)
        menu = getattr(request.app.state, "menu", None)
        if request.url.path == "/" and request.method == "GET" and menu is not None and menu.home(err.staff) != "/":
            # The site's front door (where a login lands) is the units list; whoever may not open it lands
            # on their own first page instead of a refusal (a field agent: their page).
            return RedirectResponse(menu.home(err.staff), status_code=303)
        return _page(request, 403, "Not for your role", message)

    @app.exception_handler(MustChangePassword)
    def _must_change(request: Request, err: MustChangePassword) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "change your one-time password first, at /account/password"}, 403)
        return RedirectResponse("/account/password", status_code=303)

    @app.exception_handler(CsrfRefused)
    def _csrf(request: Request, err: CsrfRefused) -> Response:
        message = "This form is out of date (or did not come from these pages): reload the page and try again."
        if _is_api(request):
            return JSONResponse({"detail": "missing or wrong X-CSRF-Token for this session"}, 403)
        return _page(request, 403, "Form refused", message)
