"""The contract page lists what the unit last reported."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.support.money import MONEY_NOW

pytestmark = pytest.mark.clock(MONEY_NOW)


def test_contract_page_shows_what_the_unit_reported(demo_client: TestClient, conn: psycopg.Connection) -> None:
    unit = demo_client.get("/api/units").json()[0]
    conn.execute(
        """insert into unit_events (unit_id, ts, kind, detail, received_at)
           select id, '2026-01-02 03:04+00', 'tamper', '{"source": "enclosure switch"}', now() from units
            where serial = %s""",
        (unit["serial"],),
    )
    conn.commit()
    page = demo_client.get(f"/contracts/{unit['account_number']}").text
    # 03:04 UTC, shown in the company's zone (Nairobi)
    assert "2026-01-02 06:04 EAT" in page and "tamper" in page and "source: enclosure switch" in page
    other = demo_client.get("/api/units").json()[1]
    assert "No event from this unit yet." in demo_client.get(f"/contracts/{other['account_number']}").text
