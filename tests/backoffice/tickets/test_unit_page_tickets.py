"""Tickets from the unit page and visits that keep a ticket open (issue 26): the assignee proposed is
the agent serving the customer's area (the seller if they serve it, else the least loaded); the ticket
opened from the page is audited as the logged-in member of staff and confirmed at the top; only the call
centre may open one there; a visit "customer not home" or "rescheduled" keeps the ticket open with its
agent, audited, and only the ticket's own agent (or the call centre) may record it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice import clock
from backoffice.audit.schemas import SYSTEM
from backoffice.config import Settings
from backoffice.tickets import service
from paygo.web import create_app
from tests.support.field import agent, sold_lamp
from tests.support.staff import api_token, csrf_of, login, user


@pytest.fixture
def field(settings: Settings, conn: psycopg.Connection) -> dict[str, int]:
    """Anna and Carl serve Kisumu, Dina only Siaya district's Kisumu, Ben Nairobi; Anna sold lamp 1, Ben
    sold lamp 2 (to a customer in Kisumu too)."""
    a = agent(conn, settings.database_url, "anna", "A1", ("Kisumu",))
    b = agent(conn, settings.database_url, "ben", "B1", ("Nairobi",))
    c = agent(conn, settings.database_url, "carl", "C1", ("kisumu /Kisumu",))
    d = agent(conn, settings.database_url, "dina", "D1", ("Kisumu/Siaya",))
    _, _, unit_1 = sold_lamp(conn, settings.secret_key, a, "LMP000001", "Amina Odhiambo")
    _, _, unit_2 = sold_lamp(conn, settings.secret_key, b, "LMP000002", "Baraka Ouma")
    conn.commit()
    return {"anna": a.id, "ben": b.id, "carl": c.id, "dina": d.id, "unit_1": unit_1, "unit_2": unit_2}


def test_the_proposed_assignee_serves_the_customers_area(conn: psycopg.Connection, field: dict[str, int]) -> None:
    # The seller serves the customer's village: the seller.
    assert service.default_agent(conn, field["unit_1"]) == (field["anna"], "Kisumu")
    # Ben sold lamp 2 but serves Nairobi: a Kisumu agent instead, the least loaded (Anna has a ticket).
    service.open_ticket(conn, SYSTEM, field["unit_1"], "repair", "call_centre", agent_id=field["anna"])
    assert service.default_agent(conn, field["unit_2"]) == (field["carl"], "kisumu/Kisumu")
    # An inactive agent is never proposed; nobody serving the village: nobody (the dispatcher decides).
    conn.execute("update agents set active = false where id = %s", (field["carl"],))
    assert service.default_agent(conn, field["unit_2"]) == (field["anna"], "Kisumu")
    conn.execute("update customers set village = 'Lodwar' where name = 'Baraka Ouma'")
    assert service.default_agent(conn, field["unit_2"]) is None


@pytest.fixture
def app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def test_the_call_centre_opens_a_ticket_from_the_unit_page(
    app: TestClient, settings: Settings, conn: psycopg.Connection, field: dict[str, int]
) -> None:
    user(settings.database_url, "cara", "call_centre")
    assert login(app, "cara").status_code == 303  # type: ignore[arg-type]
    page = app.get("/units/LMP000002").text
    csrf = csrf_of(page)
    form = page.split('id="ticket-form"')[1].split("</form>")[0]
    assert f'<option value="{field["anna"]}" selected>' in form and "serves Kisumu" in form  # Ben serves Nairobi
    form_data = {"csrf_token": csrf, "kind": "repair", "agent_id": str(field["anna"]), "note": "light flickers"}
    opened = app.post("/units/LMP000002/tickets", data=form_data)
    assert opened.status_code == 303, opened.text
    ticket_id = int(opened.headers["location"].split("ticket=")[1])
    top = app.get(opened.headers["location"]).text
    assert f"Ticket #{ticket_id} (repair) opened, assigned to Anna" in top
    assert top.index('id="done"') < top.index('id="answer"')
    assert f'href="/tickets/{ticket_id}"' in top.split('id="latest-ticket"')[1][:300]
    row = conn.execute("select source, state, agent_id, opened_by, note from tickets where id = %s", (ticket_id,))
    assert row.fetchone() == ("call_centre", "assigned", field["anna"], "cara", "light flickers")
    audit = conn.execute("""select a.actor, a.actor_user_id is not null from audit_log a
                             where a.action = 'ticket-opened' and a.entity_id = %s""", (str(ticket_id),))  # fmt: skip
    assert audit.fetchall() == [("cara", True)]
    # Left to the dispatcher; bad input gets a reason, not a 500.
    later = app.post("/units/LMP000001/tickets", data={"csrf_token": csrf, "kind": "customer_education"})
    assert "waiting for the dispatcher" in app.get(later.headers["location"]).text
    assert app.post("/units/LMP000001/tickets", data={"csrf_token": csrf, "kind": "magic"}).status_code == 422
    bad_agent = app.post("/units/LMP000001/tickets", data={"csrf_token": csrf, "kind": "repair", "agent_id": "x"})
    assert bad_agent.status_code == 422 and "No agent" in bad_agent.text
    gone = app.post("/units/LMP000001/tickets", data={"csrf_token": csrf, "kind": "repair", "agent_id": "999999"})
    assert gone.status_code == 404 and "No ticket opened" in gone.text
    assert app.post("/units/NOPE/tickets", data={"csrf_token": csrf, "kind": "repair"}).status_code == 404


def test_only_the_call_centre_opens_tickets_on_the_unit_page(
    settings: Settings, conn: psycopg.Connection, field: dict[str, int]
) -> None:
    user(settings.database_url, "fin", "finance")
    for name in ("fin", "anna"):  # finance reads the unit page; a field agent does not see it at all
        with TestClient(create_app(settings), follow_redirects=False) as client:
            assert login(client, name).status_code == 303  # type: ignore[arg-type]
            csrf = csrf_of(client.get("/account/password").text)
            refused = client.post("/units/LMP000001/tickets", data={"csrf_token": csrf, "kind": "repair"})
            assert refused.status_code == 403, name
            if name == "fin":
                page = client.get("/units/LMP000001").text
                assert 'id="ticket-form"' not in page and 'id="act-ticket"' not in page
    with TestClient(create_app(settings), follow_redirects=False) as client:
        assert client.post("/units/LMP000001/tickets", data={"kind": "repair"}).status_code in (401, 303)
        viewer = api_token(settings.database_url, "viewer")
        assert client.post("/units/LMP000001/tickets", data={"kind": "repair"}, headers=viewer).status_code == 403
    assert conn.execute("select count(*) from tickets").fetchone() == (0,)


def test_a_visit_keeps_the_ticket_open(
    app: TestClient, settings: Settings, conn: psycopg.Connection, field: dict[str, int]
) -> None:
    ticket_id = service.open_ticket(conn, SYSTEM, field["unit_1"], "repair", "call_centre", agent_id=field["anna"])
    conn.commit()
    assert login(app, "anna").status_code == 303  # type: ignore[arg-type]
    csrf = csrf_of(app.get(f"/tickets/{ticket_id}").text)
    visit = app.post(f"/tickets/{ticket_id}/visits",
                     data={"csrf_token": csrf, "outcome": "customer_not_home", "note": "gate locked"})  # fmt: skip
    assert visit.status_code == 303
    page = app.get(visit.headers["location"]).text
    assert "Visit recorded on ticket" in page and "customer not home" in page and "gate locked" in page
    assert 'id="close-ticket"' in page and 'id="visit-ticket"' in page  # still open: both forms
    assert conn.execute("select state, agent_id from tickets where id = %s", (ticket_id,)).fetchone() == (
        "assigned", field["anna"])  # fmt: skip
    # Rescheduled needs its day, in the future.
    no_day = app.post(f"/tickets/{ticket_id}/visits", data={"csrf_token": csrf, "outcome": "rescheduled"})
    assert no_day.status_code == 422 and "needs the day" in no_day.text
    past = (clock.today() - timedelta(days=1)).isoformat()
    refused = app.post(f"/tickets/{ticket_id}/visits",
                       data={"csrf_token": csrf, "outcome": "rescheduled", "next_visit_on": past})  # fmt: skip
    assert refused.status_code == 409 and "past" in refused.text
    garbled = app.post(f"/tickets/{ticket_id}/visits",
                       data={"csrf_token": csrf, "outcome": "rescheduled", "next_visit_on": "tomorrow"})  # fmt: skip
    assert garbled.status_code == 422
    day = (clock.today() + timedelta(days=2)).isoformat()
    moved = app.post(f"/tickets/{ticket_id}/visits",
                     data={"csrf_token": csrf, "outcome": "rescheduled", "next_visit_on": day})  # fmt: skip
    assert moved.status_code == 303 and f"next visit {day}" in app.get(f"/tickets/{ticket_id}").text
    audit = conn.execute("""select actor, after->>'visit' from audit_log where action = 'ticket-visit'
                             and entity_id = %s order by id""", (str(ticket_id),)).fetchall()  # fmt: skip
    assert audit == [("anna", "customer_not_home"), ("anna", "rescheduled")]
    # The API does the same; the next visit shows on the unit page's first screen.
    api = app.post(f"/api/v1/tickets/{ticket_id}/visits", json={"outcome": "needs_part"},
                   headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert api.status_code == 201 and api.json()["outcome"] == "needs_part"
    cc = api_token(settings.database_url, "call_centre")
    shown = app.get("/api/v1/units/LMP000001", headers=cc).json()["latest_ticket"]
    assert shown["id"] == ticket_id and shown["next_visit_on"] == day and shown["state"] == "assigned"


def test_visits_are_for_the_tickets_own_agent(
    app: TestClient, settings: Settings, conn: psycopg.Connection, field: dict[str, int]
) -> None:
    ticket_id = service.open_ticket(conn, SYSTEM, field["unit_1"], "repair", "call_centre", agent_id=field["anna"])
    conn.commit()
    assert login(app, "ben").status_code == 303  # type: ignore[arg-type]
    csrf = csrf_of(app.get("/tickets").text)
    other = app.post(f"/tickets/{ticket_id}/visits", data={"csrf_token": csrf, "outcome": "customer_not_home"})
    assert other.status_code == 404
    viewer = api_token(settings.database_url, "viewer")
    with TestClient(create_app(settings)) as client:
        assert client.post(f"/api/v1/tickets/{ticket_id}/visits", json={"outcome": "rescheduled"}).status_code == 401
        refused = client.post(f"/api/v1/tickets/{ticket_id}/visits", json={"outcome": "customer_not_home"},
                              headers=viewer)  # fmt: skip
        assert refused.status_code == 403
    conn.execute("update tickets set state = 'done', closed_at = paygo_now() where id = %s", (ticket_id,))
    conn.commit()
    cc = api_token(settings.database_url, "call_centre")
    with TestClient(create_app(settings)) as client:
        closed = client.post(f"/api/v1/tickets/{ticket_id}/visits", json={"outcome": "customer_not_home"}, headers=cc)
        assert closed.status_code == 409
    assert conn.execute("select count(*) from ticket_visits").fetchone() == (0,)
