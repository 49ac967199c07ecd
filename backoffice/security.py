"""Headers on every response: a request id (also in the audit trail), a Content-Security-Policy that
allows no inline script and no outside asset, no framing, no referrer leaving the site, no content
sniffing; and ``Cache-Control: no-store`` on whatever a member of staff was shown, so that the back
button after a logout shows nothing private."""

from __future__ import annotations

import re
import uuid

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
