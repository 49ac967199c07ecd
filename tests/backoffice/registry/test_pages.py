"""The call-centre page: a unit found by its account number, with every asset served by the app."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_call_centre_page_finds_a_unit_by_account_number(demo_client: TestClient) -> None:
    target = demo_client.get("/api/units").json()[5]
    page = demo_client.get("/", params={"q": target["account_number"]})
    assert page.status_code == 200
    assert target["serial"] in page.text and target["customer_name"] in page.text
    other = demo_client.get("/api/units").json()[6]
    assert other["serial"] not in page.text
    assert "No unit matches" in demo_client.get("/", params={"q": "zzz-nobody"}).text
    # Every asset the page uses is served by the app itself.
    assert demo_client.get("/static/app.css").status_code == 200
    assert "http://" not in page.text.split("<body>")[0] and "https://" not in page.text
