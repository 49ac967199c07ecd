"""Request-level defences and the headers on every response. Refused early: a NUL in the address;
answered as the caller's error, never a 500: values the database cannot hold, JSON nested too deep.
Headers on every response: a request id (also in the audit trail), a Content-Security-Policy that
allows no inline script and no outside asset, no framing, no referrer leaving the site, no content
sniffing; and ``Cache-Control: no-store`` on whatever a member of staff was shown, so that the back
button after a logout shows nothing private."""

from __future__ import annotations

import re
import uuid
from urllib.parse import unquote_to_bytes

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
]
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RefuseNul:
    """A NUL character (``%00``) anywhere in a request's path or query is refused with 400 before any
    handler sees it: no text column can hold it, and no legitimate caller sends it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope.get("path", "").encode()
            query = scope.get("query_string") or b""
            if b"%00" in raw or b"\x00" in raw or b"%00" in query or b"\x00" in query:
                await _plain(send, 400, b"NUL characters are not allowed in a request's address")
                return
            try:
                unquote_to_bytes(raw).decode("utf-8")
                unquote_to_bytes(query).decode("utf-8")
            except UnicodeDecodeError:
                await _plain(send, 400, b"the request's address is not valid UTF-8")
                return
        await self.app(scope, receive, send)


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), *HEADERS]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def install_error_answers(app: FastAPI) -> None:
    """The last line of defence against outside input reaching the database or the parser unchecked:
    a value the database cannot hold (a NUL in a body field, an out-of-range number or date) is the
    caller's error (422, with the database's reason), and so is JSON nested too deep (400)."""

    @app.exception_handler(psycopg.errors.DataError)
    def _data_error(request: Request, err: psycopg.errors.DataError) -> JSONResponse:
        reason = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        return JSONResponse({"detail": f"a value cannot be stored: {reason}"}, status_code=422)

    @app.exception_handler(RecursionError)
    def _too_deep(request: Request, err: RecursionError) -> JSONResponse:
        return JSONResponse({"detail": "the body is nested too deep"}, status_code=400)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        # A proxy's request id is kept when it looks like one; otherwise we make our own.
        state["request_id"] = given if _SANE_ID.match(given) else uuid.uuid4().hex

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() not in dict(HEADERS)]
                headers += HEADERS
                headers.append((b"x-request-id", state["request_id"].encode()))
                if state.get("staff") is not None:
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
