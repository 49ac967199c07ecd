"""Request-level defences and the headers on every response. Refused early: a NUL in the address;
answered as the caller's error, never a 500: values the database cannot hold, JSON nested too deep.
Headers on every response: a request id (also in the audit trail), a Content-Security-Policy that
allows no inline script and no outside asset, no framing, no referrer leaving the site, no content
sniffing; and ``Cache-Control: no-store`` on whatever a member of staff was shown, so that the back
button after a logout shows nothing private."""

from __future__ import annotations

import uuid
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from urllib.parse import unquote_to_bytes

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backoffice.config import Settings

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


def networks(text: str) -> list[IPv4Network | IPv6Network]:
    return [ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


def client_address(request: Request, settings: Settings) -> str:
    """The caller's address: the peer's, or, when the peer is one of our trusted proxies, the last
    address in X-Forwarded-For that is not a trusted proxy (what a proxy appends cannot be forged)."""
    peer = request.client.host if request.client else ""
    trusted = networks(settings.trusted_proxies)

    def is_trusted(addr: str) -> bool:
        try:
            return any(ip_address(addr) in net for net in trusted)
        except ValueError:
            return False

    if not is_trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return peer


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
        # Our own id, never the caller's: it goes into the audit trail.
        state["request_id"] = uuid.uuid4().hex

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
