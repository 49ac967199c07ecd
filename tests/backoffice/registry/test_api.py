from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice.config import Settings
from backoffice.registry.service import account_number, is_valid_account_number
from devtools import demo_data
from paygo.web import create_app


@pytest.fixture
def client(settings: Settings, conn: psycopg.Connection) -> Iterator[TestClient]:
    demo_data.seed(conn, settings.secret_key, customers=12)
    conn.commit()
    with TestClient(create_app(settings)) as c:
        yield c


def test_units_api_lists_the_demo_company(client: TestClient) -> None:
    units = client.get("/api/units").json()
    assert len(units) == 12
    assert all(is_valid_account_number(u["account_number"]) for u in units)
    one = client.get(f"/api/units/{units[0]['serial']}").json()
    assert one["customer_name"] == units[0]["customer_name"]
    missing = client.get("/api/units/NOPE")
    assert missing.status_code == 404 and "search" in missing.json()["detail"]
    assert client.get("/api/stats").json()["units"] == 12


def test_call_centre_page_finds_a_unit_by_account_number(client: TestClient) -> None:
    target = client.get("/api/units").json()[5]
    page = client.get("/", params={"q": target["account_number"]})
    assert page.status_code == 200
    assert target["serial"] in page.text and target["customer_name"] in page.text
    other = client.get("/api/units").json()[6]
    assert other["serial"] not in page.text
    assert "No unit matches" in client.get("/", params={"q": "zzz-nobody"}).text
    # Every asset the page uses is served by the app itself.
    assert client.get("/static/app.css").status_code == 200
    assert "http://" not in page.text.split("<body>")[0] and "https://" not in page.text


def test_account_numbers_catch_a_typo() -> None:
    good = account_number(1234)
    assert is_valid_account_number(good)
    typo = good[:3] + str((int(good[3]) + 1) % 10) + good[4:]
    assert not is_valid_account_number(typo)
    swapped = good[:2] + good[3] + good[2] + good[4:]
    assert swapped == good or not is_valid_account_number(swapped)


def test_contract_page_shows_what_the_unit_reported(client: TestClient, conn: psycopg.Connection) -> None:
    unit = client.get("/api/units").json()[0]
    conn.execute(
        """insert into unit_events (unit_id, ts, kind, detail, received_at)
           select id, '2026-01-02 03:04+00', 'tamper', '{"source": "enclosure switch"}', now() from units
            where serial = %s""",
        (unit["serial"],),
    )
    conn.commit()
    page = client.get(f"/contracts/{unit['account_number']}").text
    assert "2026-01-02 03:04" in page and "tamper" in page and "source: enclosure switch" in page
    other = client.get("/api/units").json()[1]
    assert "No event from this unit yet." in client.get(f"/contracts/{other['account_number']}").text
