"""Every door has a guard: each route of the app is in the table below (a new route fails here until
its rule is written down), each role is allowed or refused exactly as the table says over real HTTP,
and an outsider's request to any state-changing route changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from backoffice.staff.guard import Allow, Public
from backoffice.staff.schemas import ROLES
from devtools import demo_data
from paygo.web import create_app
from tests.support import serve
from tests.support.routes import app_routes
from tests.support.staff import api_token

PUBLIC = "public"
ANY = frozenset(ROLES)
READ = frozenset({"call_centre", "finance", "viewer"})
# route -> the roles allowed (administrators are allowed everywhere), or PUBLIC.
EXPECTED: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,  # the readiness probe: only whether the database answers
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/payments/mpesa/c2b/validation"): PUBLIC,
    ("POST", "/payments/mpesa/c2b/confirmation"): PUBLIC,
    ("POST", "/payments/mpesa/{secret}/c2b/validation"): PUBLIC,
    ("POST", "/payments/mpesa/{secret}/c2b/confirmation"): PUBLIC,
    ("POST", "/payments/momo/callback/{reference_id}"): PUBLIC,
    ("PUT", "/payments/momo/callback/{reference_id}"): PUBLIC,
    ("POST", "/payments/momo/callback"): PUBLIC,
    ("PUT", "/payments/momo/callback"): PUBLIC,
    ("POST", "/payments/webhook/{provider}"): PUBLIC,
    ("GET", "/openapi.json"): ANY,
    ("POST", "/logout"): ANY,
    ("GET", "/account/password"): ANY,
    ("POST", "/account/password"): ANY,
    ("GET", "/audit"): frozenset({"admin"}),
    ("GET", "/api/audit"): frozenset({"admin"}),
    ("GET", "/api/tokens"): frozenset({"admin"}),
    ("POST", "/api/tokens"): frozenset({"admin"}),
    ("POST", "/api/tokens/{token_id}/revoke"): frozenset({"admin"}),
    ("GET", "/"): READ,
    ("GET", "/api/units"): READ,
    ("GET", "/api/units/{serial}"): READ,
    ("GET", "/api/stats"): READ,
    ("GET", "/payments"): frozenset({"finance", "call_centre"}),
    ("GET", "/api/payments"): frozenset({"finance", "call_centre"}),
    ("POST", "/api/payments/manual"): frozenset({"finance"}),
    ("POST", "/api/payments/momo/requests"): frozenset({"finance", "call_centre"}),
    ("GET", "/api/unmatched"): frozenset({"finance"}),
    ("POST", "/api/unmatched/{unmatched_id}/assign"): frozenset({"finance"}),
    ("POST", "/api/unmatched/{unmatched_id}/refund"): frozenset({"finance"}),
    ("POST", "/api/contracts/{account_number}/state"): frozenset({"finance"}),
    ("GET", "/contracts/{account_number}"): frozenset({"call_centre", "finance"}),
    ("GET", "/api/contracts/{account_number}/tokens"): frozenset({"call_centre", "finance"}),
    ("POST", "/api/tokens/{token_id}/resend"): frozenset({"call_centre"}),
    ("POST", "/contracts/{account_number}/tokens/{token_id}/resend"): frozenset({"call_centre"}),
    ("GET", "/api/sms"): frozenset({"call_centre"}),
    # issue 14b: finance's work page and its API; a unit's SMS log
    ("GET", "/payments/waiting"): frozenset({"finance"}),
    ("POST", "/payments/waiting/{item_id}/assign"): frozenset({"finance"}),
    ("POST", "/payments/waiting/{item_id}/release"): frozenset({"finance"}),
    ("POST", "/payments/waiting/{item_id}/refund"): frozenset({"finance"}),
    ("POST", "/payments/refunds/{refund_id}/done"): frozenset({"finance"}),
    ("GET", "/api/v1/payments/unmatched"): frozenset({"finance"}),
    ("GET", "/api/v1/payments/held"): frozenset({"finance"}),
    ("GET", "/api/v1/payments/ended-contract"): frozenset({"finance"}),  # issue 21
    ("GET", "/api/v1/payments/contracts"): frozenset({"finance"}),
    ("POST", "/api/v1/payments/waiting/{item_id}/assign"): frozenset({"finance"}),
    ("POST", "/api/v1/payments/waiting/{item_id}/release"): frozenset({"finance"}),
    ("POST", "/api/v1/payments/waiting/{item_id}/refund"): frozenset({"finance"}),
    ("GET", "/api/v1/payments/waiting/{item_id}/trail"): frozenset({"finance"}),
    ("GET", "/api/v1/payments/decisions"): frozenset({"finance"}),
    ("GET", "/api/v1/payments/refunds"): frozenset({"finance"}),
    ("POST", "/api/v1/payments/refunds/{refund_id}/done"): frozenset({"finance"}),
    ("GET", "/api/v1/units/{serial}/sms"): frozenset({"call_centre"}),
    ("GET", "/kpi"): frozenset({"finance", "viewer"}),
    ("GET", "/api/kpi/latest"): frozenset({"finance", "viewer"}),
    ("GET", "/api/kpi/snapshots/{as_of}"): frozenset({"finance", "viewer"}),
    ("GET", "/api/kpi/series"): frozenset({"finance", "viewer"}),
    ("GET", "/api/kpi/export.csv"): frozenset({"finance", "viewer"}),
    ("GET", "/api/v1/kpi/portfolio-quality"): frozenset({"finance", "viewer"}),
    ("GET", "/api/v1/kpi/loan-tape"): frozenset({"finance", "viewer"}),
    # The call centre's surface (issue 14): the search box, customers, the unit page and its actions.
    ("GET", "/search"): frozenset({"call_centre", "finance"}),
    ("GET", "/api/v1/search"): frozenset({"call_centre", "finance"}),
    ("GET", "/customers/{customer_id}"): frozenset({"call_centre", "finance"}),
    ("POST", "/customers/{customer_id}"): frozenset({"call_centre"}),
    ("GET", "/api/v1/customers/{customer_id}"): frozenset({"call_centre", "finance"}),
    ("POST", "/api/v1/customers"): frozenset({"call_centre"}),
    ("PATCH", "/api/v1/customers/{customer_id}"): frozenset({"call_centre"}),
    ("GET", "/api/v1/customers/{customer_id}/notes"): frozenset({"call_centre", "finance"}),
    ("POST", "/api/v1/customers/{customer_id}/notes"): frozenset({"call_centre"}),
    ("GET", "/units/{serial}"): frozenset({"call_centre", "finance"}),
    ("POST", "/units/{serial}/tokens/{token_id}/resend"): frozenset({"call_centre"}),
    ("POST", "/units/{serial}/goodwill"): frozenset({"call_centre"}),
    ("POST", "/units/{serial}/notes"): frozenset({"call_centre"}),
    ("POST", "/units/{serial}/tickets"): frozenset({"call_centre"}),  # issue 26
    ("GET", "/api/v1/units/{serial}"): frozenset({"call_centre", "finance"}),
    ("POST", "/api/v1/units/{serial}/goodwill"): frozenset({"call_centre"}),
    ("POST", "/api/v1/units/{serial}/tokens/{token_id}/resend"): frozenset({"call_centre"}),
    # field operations (issue 15)
    ("GET", "/api/v1/inventory/locations"): READ,
    ("GET", "/api/v1/inventory/stock"): READ,
    ("GET", "/api/v1/inventory/units"): READ,
    ("GET", "/api/v1/inventory/units/{serial}"): READ,
    ("POST", "/api/v1/inventory/units/{serial}/moves"): frozenset({"call_centre"}),
    ("POST", "/api/v1/inventory/receipts"): frozenset({"call_centre"}),
    ("POST", "/api/v1/inventory/parts"): frozenset({"call_centre"}),
    ("POST", "/api/v1/inventory/units/{serial}/rekey"): frozenset({"admin"}),  # issue 21
    ("GET", "/api/v1/agents/me"): frozenset({"field_agent"}),
    ("GET", "/api/v1/agents/me/customers"): frozenset({"field_agent"}),
    ("GET", "/api/v1/agents"): READ,
    ("GET", "/api/v1/agents/{agent_id}"): READ,
    ("POST", "/api/v1/agents"): frozenset({"admin"}),
    ("POST", "/api/v1/agents/{agent_id}/sales"): frozenset({"call_centre", "finance"}),
    ("GET", "/api/v1/commissions"): frozenset({"finance"}),
    ("GET", "/api/v1/commissions/export.csv"): frozenset({"finance"}),
    ("POST", "/api/v1/agents/{agent_id}/payouts"): frozenset({"finance"}),
    ("GET", "/api/v1/tickets"): frozenset({"call_centre", "field_agent", "viewer"}),
    ("GET", "/api/v1/tickets/{ticket_id}"): frozenset({"call_centre", "field_agent", "viewer"}),
    ("POST", "/api/v1/tickets"): frozenset({"call_centre", "field_agent"}),
    ("POST", "/api/v1/tickets/{ticket_id}/close"): frozenset({"call_centre", "field_agent"}),
    ("POST", "/api/v1/tickets/{ticket_id}/visits"): frozenset({"call_centre", "field_agent"}),  # issue 26
    ("POST", "/api/v1/tickets/{ticket_id}/assign"): frozenset({"call_centre"}),
    ("GET", "/inventory"): READ,
    ("POST", "/inventory/receipts"): frozenset({"call_centre"}),
    ("POST", "/inventory/moves"): frozenset({"call_centre"}),
    ("POST", "/inventory/parts"): frozenset({"call_centre"}),
    ("GET", "/agents/me"): frozenset({"field_agent"}),
    ("GET", "/agents"): READ,
    ("GET", "/agents/{agent_id}"): READ,
    ("POST", "/agents/{agent_id}/payouts"): frozenset({"finance"}),
    ("GET", "/tickets"): frozenset({"call_centre", "field_agent", "viewer"}),
    ("GET", "/tickets/{ticket_id}"): frozenset({"call_centre", "field_agent", "viewer"}),
    ("POST", "/tickets"): frozenset({"call_centre", "field_agent"}),
    ("POST", "/tickets/{ticket_id}/close"): frozenset({"call_centre", "field_agent"}),
    ("POST", "/tickets/{ticket_id}/visits"): frozenset({"call_centre", "field_agent"}),  # issue 26
    ("POST", "/tickets/{ticket_id}/assign"): frozenset({"call_centre"}),
    # issue 26: the daily tasks on pages
    ("GET", "/customers/new"): frozenset({"call_centre"}),
    ("POST", "/customers/new"): frozenset({"call_centre"}),
    ("GET", "/sales/new"): frozenset({"call_centre"}),
    ("POST", "/sales/new"): frozenset({"call_centre"}),
    ("GET", "/sales/{account_number}"): frozenset({"call_centre"}),
    ("POST", "/sales/{account_number}/install"): frozenset({"call_centre"}),
    ("GET", "/contracts/end"): frozenset({"finance"}),
    ("POST", "/contracts/end"): frozenset({"finance"}),
    ("GET", "/agents/new"): frozenset({"admin"}),
    ("POST", "/agents/new"): frozenset({"admin"}),
    ("GET", "/commission-rules"): frozenset({"admin"}),
    ("POST", "/commission-rules"): frozenset({"admin"}),
    ("POST", "/api/v1/metrics/move"): frozenset({"admin"}),
    ("POST", "/api/v1/metrics/extra_data"): frozenset({"admin"}),
    ("GET", "/fleet-health"): frozenset({"call_centre", "viewer"}),
    ("GET", "/api/v1/fleet-health/alerts"): frozenset({"call_centre", "viewer"}),
    ("GET", "/api/v1/fleet-health/outreach"): frozenset({"call_centre", "viewer"}),
    ("GET", "/api/v1/fleet-health/units/{unit_id}"): frozenset({"call_centre", "viewer"}),
    ("POST", "/api/v1/fleet-health/alerts/{alert_id}/acknowledge"): frozenset({"call_centre"}),
    # issue 26: the tasks that needed the API or the CLI, on pages (docs/finance_pages.md)
    ("GET", "/staff"): frozenset({"admin"}),
    ("POST", "/staff/users"): frozenset({"admin"}),
    ("POST", "/staff/users/{username}/reset"): frozenset({"admin"}),
    ("POST", "/staff/users/{username}/disabled"): frozenset({"admin"}),
    ("POST", "/staff/tokens"): frozenset({"admin"}),
    ("POST", "/staff/tokens/{token_id}/revoke"): frozenset({"admin"}),
    ("GET", "/payments/manual"): frozenset({"finance"}),
    ("POST", "/payments/manual"): frozenset({"finance"}),
    ("GET", "/payments/momo"): frozenset({"finance", "call_centre"}),
    ("POST", "/payments/momo"): frozenset({"finance", "call_centre"}),
    ("GET", "/payments/statement"): frozenset({"finance"}),
    ("POST", "/payments/statement"): frozenset({"finance"}),
    ("GET", "/payments/waiting/{item_id}/assign"): frozenset({"finance"}),
    ("GET", "/fleet-health/alerts/{alert_id}"): frozenset({"call_centre", "viewer"}),
    ("POST", "/fleet-health/alerts/{alert_id}/acknowledge"): frozenset({"call_centre"}),
}
SAMPLES = {
    "serial": "SHS000001", "token_id": "999999", "unmatched_id": "999999", "as_of": "2024-06-30",
    "provider": "wing", "reference_id": "REF-NONE", "secret": "s", "customer_id": "1",
    "item_id": "999999", "refund_id": "999999", "agent_id": "999999", "ticket_id": "999999",
    "unit_id": "999999", "alert_id": "999999", "username": "nobody-here",
}  # fmt: skip


def _routes(settings: Settings) -> list[tuple[str, str]]:
    routes, mounts = app_routes(create_app(settings))
    assert mounts == ["/static"]  # the stylesheet, public on purpose
    return [(method, r.path) for r in routes for method in sorted(r.methods)]


def test_every_route_declares_exactly_one_rule_and_is_in_the_table(settings: Settings) -> None:
    routes, _ = app_routes(create_app(settings))
    for r in routes:
        rules = [g for g in r.guards if isinstance(g, Allow | Public)]
        assert len(rules) == 1, f"{sorted(r.methods)} {r.path} declares {rules}: give it Allow(...) or Public(...)"
    found = set(_routes(settings))
    assert found - EXPECTED.keys() == set(), "routes without a row in EXPECTED (write down who may call them)"
    assert EXPECTED.keys() - found == set(), "rows of EXPECTED that are no route any more"


@pytest.fixture
def site(settings: Settings, conn: psycopg.Connection) -> Iterator[str]:
    demo_data.seed(conn, settings.secret_key, customers=3)
    conn.commit()
    with serve(create_app(settings)) as url:
        yield url


def _url(site: str, path: str, account: str) -> str:
    return site + path.format(**SAMPLES, account_number=account)


def _refused(reply: httpx.Response) -> bool:
    return reply.status_code in (401, 403) or (
        reply.status_code == 303 and reply.headers["location"].startswith("/login?next=")
    )


def test_each_role_is_allowed_or_refused_as_the_table_says(
    settings: Settings, conn: psycopg.Connection, site: str
) -> None:
    account = conn.execute("select account_number from contracts order by id limit 1").fetchone()[0]  # type: ignore[index]
    headers = {role: api_token(settings.database_url, role) for role in ROLES}
    wrong = []
    for method, path in _routes(settings):
        rule = EXPECTED[(method, path)]
        for role in ROLES:
            reply = httpx.request(method, _url(site, path, account), headers=headers[role], json={},
                                  follow_redirects=False)  # fmt: skip
            allowed = rule == PUBLIC or role == "admin" or role in rule
            if allowed == _refused(reply) or reply.status_code >= 500:
                wrong.append(f"{method} {path} as {role}: {reply.status_code}")
    assert wrong == []


def _state(conn: psycopg.Connection) -> dict[str, int]:
    """Rows in every table of the schema: what an outsider must not change."""
    sql = "select tablename from pg_tables where schemaname = 'public' and tablename not like 'telemetry_%'"
    tables = [r[0] for r in conn.execute(sql)]
    counts = {t: conn.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}  # type: ignore[index]
    conn.commit()
    return counts


def test_an_outsider_is_refused_everywhere_and_changes_nothing(
    settings: Settings, conn: psycopg.Connection, site: str
) -> None:
    account = conn.execute("select account_number from contracts order by id limit 1").fetchone()[0]  # type: ignore[index]
    before = _state(conn)
    tokens = conn.execute("select count(*), max(count) from tokens").fetchone()
    conn.commit()
    for method, path in _routes(settings):
        if EXPECTED[(method, path)] == PUBLIC:
            continue
        for attempt in ({}, {"Authorization": "Bearer pgt_forged"}, {"Cookie": "paygo_session=forged"}):
            reply = httpx.request(method, _url(site, path, account), headers=attempt, json={}, follow_redirects=False)
            api = path.startswith("/api/") or "Authorization" in attempt
            if api:
                assert reply.status_code == 401, (method, path, attempt, reply.status_code)
            else:
                assert reply.status_code == 303 and reply.headers["location"].startswith("/login?next="), (
                    method, path, attempt, reply.status_code)  # fmt: skip
    assert _state(conn) == before
    assert conn.execute("select count(*), max(count) from tokens").fetchone() == tokens
