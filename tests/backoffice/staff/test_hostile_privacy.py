"""Customers' personal data against a viewer's token (issue 22 finding 6), over real HTTP on the demo
company: the route x role table of test_guard.py, searched in the response bodies, not only in the
status codes."""

from __future__ import annotations

import httpx
import psycopg

from backoffice.config import Settings
from tests.backoffice.staff.test_guard import EXPECTED, PUBLIC, SAMPLES, _routes, site
from tests.support.staff import api_token

__all__ = ["site"]  # the demo company served, shared with test_guard.py


def test_viewers_are_served_no_customers_personal_data(settings: Settings, conn: psycopg.Connection, site: str) -> None:
    """Issue 22 finding 6: viewers (investors) read customers' names and exact GPS from /api/units, phone
    numbers from /api/v1/tickets, names from /api/v1/agents/{id}. Every JSON answer a viewer may get is
    searched for every customer's name, phone number and position; the roles that work with customers
    still get them."""
    account = conn.execute("select account_number from contracts order by id limit 1").fetchone()[0]  # type: ignore[index]
    names = [n for (n,) in conn.execute("select name from customers")]
    phones = [p for (p,) in conn.execute("select e164 from customer_phones")]
    places = [f"{lat}" for (lat,) in conn.execute("select latitude from units where latitude is not null")]
    agent = conn.execute("select id from agents order by id limit 1").fetchone()
    ticket = conn.execute("select id from tickets order by id limit 1").fetchone()
    conn.commit()
    assert names and phones and places and agent and ticket  # the demo company has them all
    samples = {**SAMPLES, "agent_id": str(agent[0]), "ticket_id": str(ticket[0])}
    viewer = api_token(settings.database_url, "viewer")
    seen = []
    for method, path in _routes(settings):
        rule = EXPECTED[(method, path)]
        if method != "GET" or rule == PUBLIC or "viewer" not in rule:
            continue
        reply = httpx.get(site + path.format(**samples, account_number=account), headers=viewer)
        if reply.status_code != 200 or not reply.headers["content-type"].startswith("application/json"):
            continue
        seen.append(path)
        leaked = [x for x in (*names, *phones, *places) if x in reply.text]
        assert leaked == [], (path, leaked[:3])
    assert {"/api/units", "/api/v1/tickets", "/api/v1/agents/{agent_id}"} <= set(seen)
    # The call centre works with the people: it still sees them.
    call_centre = api_token(settings.database_url, "call_centre")
    units = httpx.get(f"{site}/api/units", headers=call_centre).json()
    assert {u["customer_name"] for u in units} & set(names)
