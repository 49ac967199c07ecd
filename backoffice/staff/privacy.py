"""Customers' personal data (names, phone numbers, exact positions) only for the roles whose work needs
it, in one place for every JSON answer (issue 22 finding 6): viewers (investors) read the portfolio,
not the people in it. The rule is applied to the answer, not remembered by each route: a field with a
personal name is emptied in any JSON body served to staff without such a role, however deep it is."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backoffice.staff.schemas import Staff

# The roles that deal with customers as people: the call centre, finance (payments name their payer),
# field agents (their own customers only, scoped where the rows are read); administrators hold all.
PERSONAL_DATA_ROLES = frozenset({"call_centre", "finance", "field_agent"})
# Keys of personal fields, wherever they are in an answer. Product, part and agent-code names are not
# personal; a customer's name always goes by one of these keys.
PERSONAL_KEYS = frozenset({
    "customer_name", "name_words", "phone", "phones", "e164", "legacy_phone", "sms_phone", "payer", "msisdn",
    "latitude", "longitude", "lat", "lon", "gps", "address", "national_id",
})  # fmt: skip


def sees_personal_data(staff: Staff) -> bool:
    return staff.holds(PERSONAL_DATA_ROLES)


def redact(value: Any) -> Any:
    """``value`` with every personal field emptied (None), at any depth."""
    if isinstance(value, dict):
        return {k: None if k in PERSONAL_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class PersonalData:
    """ASGI middleware: a JSON answer to staff without a personal-data role leaves with its personal
    fields emptied. The guard (backoffice/staff/guard.py) puts the staff member in the request's state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # shared with the route's Request, which the guard fills
        start: Message | None = None
        chunks: list[bytes] = []

        async def filtered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                staff = state.get("staff")
                headers = dict(message.get("headers", []))
                json_body = headers.get(b"content-type", b"").startswith(b"application/json")
                if isinstance(staff, Staff) and json_body and not sees_personal_data(staff):
                    start = message
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = json.dumps(redact(json.loads(b"".join(chunks))), separators=(",", ":")).encode()
                kept = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                await send({**start, "headers": [*kept, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, filtered)
