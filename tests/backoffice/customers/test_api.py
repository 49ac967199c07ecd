"""/api/v1 of customers: create and edit with numbers normalised (a bad one refused with the reason),
a national id kept for one customer, notes of calls by the caller's login; each change audited, and
the roles that may not are refused."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from backoffice.config import Settings
from paygo.web import create_app
from tests.support.staff import api_token


def _client(settings: Settings, role: str) -> TestClient:
    return TestClient(create_app(settings), headers=api_token(settings.database_url, role))


def test_create_edit_and_note_a_customer(settings: Settings, conn: psycopg.Connection) -> None:
    with _client(settings, "call_centre") as api:
        new = {"name": " Halima Juma ", "phones": ["0712 345 678", "+255 754 123 456"], "national_id": "12 345 678",
               "village": "Voi", "latitude": -3.39, "longitude": 38.56, "language": "sw"}  # fmt: skip
        made = api.post("/api/v1/customers", json=new)
        assert made.status_code == 201, made.text
        c = made.json()
        assert (c["name"], c["national_id"], c["language"]) == ("Halima Juma", "12345678", "sw")
        assert [p["e164"] for p in c["phones"]] == ["+254712345678", "+255754123456"]

        bad = api.patch(f"/api/v1/customers/{c['id']}", json={"phones": ["0712 345 678", "12"]})
        assert bad.status_code == 422 and "'12' is not a phone number" in bad.json()["detail"]
        off_map = api.patch(f"/api/v1/customers/{c['id']}", json={"latitude": 91})
        assert off_map.status_code == 422

        changed = api.patch(f"/api/v1/customers/{c['id']}", json={"phones": ["0733 000 111"], "village": "Kitui"})
        assert changed.status_code == 200
        assert [p["e164"] for p in changed.json()["phones"]] == ["+254733000111"]
        assert changed.json()["village"] == "Kitui" and changed.json()["name"] == "Halima Juma"

        twin = api.post("/api/v1/customers", json={"name": "Someone Else", "national_id": "12345678"})
        assert twin.status_code == 422 and "already customer" in twin.json()["detail"]

        note = api.post(f"/api/v1/customers/{c['id']}/notes", json={"body": "Asked about her balance."})
        assert note.status_code == 201 and note.json()["author"] == "token:test-call_centre"
        notes = api.get(f"/api/v1/customers/{c['id']}/notes").json()
        assert [n["body"] for n in notes] == ["Asked about her balance."]
        assert api.post("/api/v1/customers/999999/notes", json={"body": "x"}).status_code == 404
        assert api.post(f"/api/v1/customers/{c['id']}/notes", json={"body": "  "}).status_code == 422
    trail = conn.execute(
        "select actor, action, before ->> 'village', after ->> 'village' from audit_log where entity = 'customer' "
        "and entity_id = %s order by id", (str(c["id"]),),
    ).fetchall()  # fmt: skip
    assert trail == [("token:test-call_centre", "customer-created", None, "Voi"),
                     ("token:test-call_centre", "customer-updated", "Voi", "Kitui"),
                     ("token:test-call_centre", "call-note-added", None, None)]  # fmt: skip


def test_only_the_call_centre_edits_and_finance_reads(settings: Settings, conn: psycopg.Connection) -> None:
    with _client(settings, "call_centre") as api:
        cid = api.post("/api/v1/customers", json={"name": "Juma Wekesa"}).json()["id"]
    with _client(settings, "finance") as api:
        assert api.get(f"/api/v1/customers/{cid}").status_code == 200
        assert api.post("/api/v1/customers", json={"name": "X"}).status_code == 403
        assert api.patch(f"/api/v1/customers/{cid}", json={"name": "X"}).status_code == 403
        assert api.post(f"/api/v1/customers/{cid}/notes", json={"body": "x"}).status_code == 403
    for role in ("viewer", "field_agent"):
        with _client(settings, role) as api:
            assert api.get(f"/api/v1/customers/{cid}").status_code == 403
            assert api.get(f"/api/v1/customers/{cid}/notes").status_code == 403
            assert api.get("/api/v1/search", params={"q": "Juma"}).status_code == 403  # names, numbers, ids
    with TestClient(create_app(settings)) as outsider:
        assert outsider.get("/api/v1/search", params={"q": "Juma"}).status_code == 401
        assert outsider.post("/api/v1/customers", json={"name": "X"}).status_code == 401
    assert conn.execute("select count(*) from customers").fetchone() == (1,)
