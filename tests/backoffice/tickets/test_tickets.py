"""Tickets over the API: a field agent sees and closes only their own (another agent's is 404, a
viewer may not close, nobody unlogged gets in); a battery swap takes the part from the agent's stock;
a repossession ends the contract and brings the unit back to stock, every step audited; an alert opens
a ticket through ``open_ticket``; SLA breaches show."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice.audit.schemas import SYSTEM
from backoffice.config import Settings
from backoffice.tickets import service
from paygo.web import create_app
from tests.support.field import agent, main_warehouse, parts_for, sold_lamp
from tests.support.staff import api_token, csrf_of, login


@pytest.fixture
def field(settings: Settings, conn: psycopg.Connection) -> dict[str, int]:
    """Two agents, each with a customer's lamp and a ticket on it; agent A carries 3 batteries."""
    a = agent(conn, settings.database_url, "anna", "A1")
    b = agent(conn, settings.database_url, "ben", "B1")
    parts_for(conn, a, "BAT-12V", 3)
    _, account_a, unit_a = sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina Odhiambo")
    _, _, unit_b = sold_lamp(conn, settings.secret_key, b, "LMP000002", "Baraka Ouma")
    ids = {
        "a": a.id,
        "b": b.id,
        "unit_a": unit_a,
        "swap_a": service.open_ticket(
            conn, SYSTEM, unit_a, "battery_swap", "call_centre", "dim at night", agent_id=a.id
        ),
        "ticket_b": service.open_ticket(conn, SYSTEM, unit_b, "repair", "call_centre", agent_id=b.id),
        "repo_a": service.open_ticket(
            conn, SYSTEM, unit_a, "repossession", "call_centre", "90 days unpaid", agent_id=a.id
        ),
    }
    conn.commit()
    ids["location_a"] = a.location_id or 0
    return ids


@pytest.fixture
def app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def _as(app: TestClient, name: str) -> dict[str, str]:
    assert login(app, name).status_code == 303
    return {"X-CSRF-Token": csrf_of(app.get("/tickets").text)}


def test_a_field_agent_sees_and_closes_only_their_own_tickets(app: TestClient, field: dict[str, int]) -> None:
    headers = _as(app, "anna")
    listed = app.get("/api/v1/tickets").json()
    assert sorted(t["id"] for t in listed) == sorted([field["swap_a"], field["repo_a"]])
    assert app.get(f"/api/v1/tickets/{field['ticket_b']}").status_code == 404
    assert app.get(f"/tickets/{field['ticket_b']}").status_code == 404
    refused = app.post(f"/api/v1/tickets/{field['ticket_b']}/close", json={"outcome": "done"}, headers=headers)
    assert refused.status_code == 404
    customers = app.get("/api/v1/agents/me/customers").json()
    assert [c["name"] for c in customers] == ["Amina Odhiambo"]
    # Another agent's customer's unit cannot have a ticket opened by this agent either.
    assert (
        app.post("/api/v1/tickets", json={"serial": "LMP000002", "kind": "repair"}, headers=headers).status_code == 404
    )
    mine = app.post("/api/v1/tickets", json={"serial": "LMP000001", "kind": "customer_education"}, headers=headers)
    assert mine.status_code == 201 and mine.json()["agent_id"] == field["a"] and mine.json()["source"] == "field_agent"
    # Not the dispatcher's doors, nor the inventory's.
    assert (
        app.post(
            f"/api/v1/tickets/{field['swap_a']}/assign", json={"agent_id": field["b"]}, headers=headers
        ).status_code
        == 403
    )
    assert app.get("/api/v1/inventory/stock").status_code == 403


def test_outsiders_are_refused_at_the_ticket_doors(app: TestClient, settings: Settings, field: dict[str, int]) -> None:
    t = field["swap_a"]
    for method, path in [
        ("GET", "/api/v1/tickets"),
        ("GET", f"/api/v1/tickets/{t}"),
        ("POST", f"/api/v1/tickets/{t}/close"),
        ("POST", "/api/v1/tickets"),
        ("GET", "/api/v1/agents/me"),
        ("POST", "/api/v1/inventory/receipts?location_id=1"),
    ]:
        assert app.request(method, path, json={"outcome": "done"}).status_code == 401, path
    viewer = api_token(settings.database_url, "viewer")
    assert app.post(f"/api/v1/tickets/{t}/close", json={"outcome": "done"}, headers=viewer).status_code == 403
    assert app.get(f"/api/v1/tickets/{t}", headers=viewer).status_code == 200  # viewers read
    finance = api_token(settings.database_url, "finance")
    assert app.get("/api/v1/tickets", headers=finance).status_code == 403
    # A field agent's API token is no agent: it sees no ticket at all.
    agent_token = api_token(settings.database_url, "field_agent")
    assert app.get("/api/v1/tickets", headers=agent_token).json() == []
    assert app.get(f"/api/v1/tickets/{t}", headers=agent_token).status_code == 404
    assert app.get("/tickets", follow_redirects=False).status_code == 303


def test_a_battery_swap_takes_the_part_from_the_agents_stock(
    app: TestClient, conn: psycopg.Connection, field: dict[str, int]
) -> None:
    headers = _as(app, "anna")
    too_many = app.post(
        f"/api/v1/tickets/{field['swap_a']}/close",
        headers=headers,
        json={"outcome": "done", "parts": [{"sku": "BAT-12V", "quantity": 4}]},
    )
    assert too_many.status_code == 409 and "only 3 of BAT-12V" in too_many.json()["detail"]
    done = app.post(
        f"/api/v1/tickets/{field['swap_a']}/close",
        headers=headers,
        json={"outcome": "done", "note": "new battery", "parts": [{"sku": "BAT-12V"}]},
    )
    assert done.status_code == 200 and done.json()["state"] == "done"
    assert conn.execute(
        "select quantity from part_stock where location_id = %s and sku = 'BAT-12V'", (field["location_a"],)
    ).fetchone() == (2,)
    detail = app.get(f"/api/v1/tickets/{field['swap_a']}").json()
    assert detail["parts_used"] == [{"sku": "BAT-12V", "name": "Battery 12 V 7 Ah", "quantity": 1}]
    again = app.post(f"/api/v1/tickets/{field['swap_a']}/close", json={"outcome": "done"}, headers=headers)
    assert again.status_code == 409


def test_a_repossession_ends_the_contract_and_brings_the_unit_back_to_stock(
    app: TestClient, settings: Settings, conn: psycopg.Connection, field: dict[str, int]
) -> None:
    headers = _as(app, "anna")
    closed = app.post(
        f"/api/v1/tickets/{field['repo_a']}/close", json={"outcome": "done", "note": "taken back"}, headers=headers
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["contract_state"] == "repossessed"
    row = conn.execute(
        "select c.state, c.ended_at is not null, u.state from contracts c join units u on u.id = c.unit_id "
        "where u.id = %s",
        (field["unit_a"],),
    ).fetchone()
    assert row == ("repossessed", True, "repossessed")
    call_centre = api_token(settings.database_url, "call_centre")
    for action in ("return_to_warehouse", "refurbished"):
        moved = app.post("/api/v1/inventory/units/LMP000001/moves", json={"action": action}, headers=call_centre)
        assert moved.status_code == 200, moved.text
    unit = app.get("/api/v1/inventory/units/LMP000001", headers=call_centre).json()
    assert unit["unit"]["state"] == "in_stock" and unit["unit"]["location_id"] == main_warehouse(conn)
    assert [m["state_after"] for m in reversed(unit["moves"])] == ["repossessed", "refurbishing", "in_stock"]
    trail = [
        r[0]
        for r in conn.execute(
            "select action from audit_log where (entity = 'unit' and entity_id = 'LMP000001') or entity = 'contract' "
            "or (entity = 'ticket' and entity_id = %s) order by id",
            (str(field["repo_a"]),),
        )
    ]
    assert trail[-5:] == [
        "contract-repossessed",
        "unit-repossess",
        "ticket-done",
        "unit-return-to-warehouse",
        "unit-refurbished",
    ]
    # The contract is no longer active: what reminder and collection jobs select (state = 'active') skips it.
    assert conn.execute(
        "select count(*) from contracts where state = 'active' and unit_id = %s", (field["unit_a"],)
    ).fetchone() == (0,)


def test_an_alert_opens_a_ticket_and_breaches_show(conn: psycopg.Connection, field: dict[str, int]) -> None:
    ticket_id = service.open_ticket(
        conn, SYSTEM, field["unit_a"], "repair", "alert", "battery fade", sla_hours={"repair": 1}
    )
    conn.execute(
        "update tickets set opened_at = opened_at - interval '2 hours', due_at = due_at - interval '2 hours' "
        "where id = %s",
        (ticket_id,),
    )
    found = service.repository.search(conn, None, breached=True)
    assert [t.id for t in found] == [ticket_id] and found[0].source == "alert" and found[0].state == "open"
    due = service.sla_due("battery_swap", datetime(2026, 1, 1, tzinfo=UTC))  # round the clock: no working hours
    assert due - datetime(2026, 1, 1, tzinfo=UTC) == timedelta(hours=service.DEFAULT_SLA_HOURS["battery_swap"])
    with pytest.raises(service.TicketRefused):
        service.open_ticket(conn, SYSTEM, field["unit_a"], "teleport", "alert")
    with pytest.raises(LookupError):
        service.open_ticket(conn, SYSTEM, 999_999, "repair", "alert")


def test_an_agent_loses_a_unit_resold_to_another_agents_customer_and_never_opens_a_repossession(
    app: TestClient, field: dict[str, int], conn: psycopg.Connection, settings: Settings
) -> None:
    headers = _as(app, "anna")
    refused = app.post("/api/v1/tickets", json={"serial": "LMP000001", "kind": "repossession"}, headers=headers)
    assert refused.status_code == 422 and "call centre" in refused.text
    # Anna's customer's contract ends and her tickets on the unit are done: it is no longer hers.
    conn.execute("update contracts set state = 'returned' where unit_id = %s", (field["unit_a"],))
    conn.execute("update tickets set state = 'done', closed_at = now() where unit_id = %s", (field["unit_a"],))
    conn.commit()
    again = app.post("/api/v1/tickets", json={"serial": "LMP000001", "kind": "repair"}, headers=headers)
    assert again.status_code == 404
    assert app.get("/api/v1/agents/me/customers").json() == []
