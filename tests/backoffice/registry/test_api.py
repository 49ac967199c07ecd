"""The registry's JSON API: units of the demo company, one by serial, and the totals."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backoffice.registry.service import is_valid_account_number


def test_units_api_lists_the_demo_company(demo_client: TestClient) -> None:
    listed = demo_client.get("/api/units").json()
    units = [u for u in listed if u["account_number"]]  # the demo's spare units in stock have no contract
    assert len(units) == 12 and len(listed) == 12 + 10
    assert all(is_valid_account_number(u["account_number"]) for u in units)
    one = demo_client.get(f"/api/units/{units[0]['serial']}").json()
    assert one["customer_name"] == units[0]["customer_name"]
    missing = demo_client.get("/api/units/NOPE")
    assert missing.status_code == 404 and "search" in missing.json()["detail"]
    assert demo_client.get("/api/stats").json()["units"] == 12 + 10
