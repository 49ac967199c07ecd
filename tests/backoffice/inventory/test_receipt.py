"""A shipment received from a CSV file: every bad line named by its number, and nothing written."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice.config import Settings
from backoffice.inventory import receipt
from paygo.web import create_app
from tests.support.field import lamp_product, main_warehouse
from tests.support.staff import TEST_ACTOR, csrf_of, login, user


def _rows(conn: psycopg.Connection) -> tuple[int, int, int, int]:
    row = conn.execute("""select (select count(*) from units), (select count(*) from unit_locations),
                                 (select count(*) from stock_moves), (select count(*) from audit_log)""").fetchone()
    assert row is not None
    return row


def test_a_good_file_puts_every_unit_in_stock_at_the_warehouse(settings: Settings, conn: psycopg.Connection) -> None:
    lamp_product(conn)
    body = b"\xef\xbb\xbfserial,product\nLMP100001,L\n\nLMP100002 , L\n"
    result = receipt.receive(conn, TEST_ACTOR, settings.secret_key, main_warehouse(conn), body)
    assert result.serials == ["LMP100001", "LMP100002"]
    assert conn.execute(
        "select count(*) from units u join unit_locations l on l.unit_id = u.id "
        "where u.state = 'in_stock' and l.location_id = %s",
        (main_warehouse(conn),),
    ).fetchone() == (2,)
    assert conn.execute("select count(*) from stock_moves where reason like 'received%'").fetchone() == (2,)


def test_bad_lines_are_named_by_number_and_nothing_is_written(settings: Settings, conn: psycopg.Connection) -> None:
    lamp_product(conn)
    receipt.receive(conn, TEST_ACTOR, settings.secret_key, main_warehouse(conn), b"serial,product\nLMP000009,L\n")
    before = _rows(conn)
    body = (
        b"serial,product\nLMP200001,L\nLMP200002,NOPE\nLMP200001,L\nx,L\nLMP200003,L,extra\n"
        b"LMP\xff00004,L\nLMP000009,L\n"
    )
    with pytest.raises(receipt.ReceiptProblems) as refused:
        receipt.receive(conn, TEST_ACTOR, settings.secret_key, main_warehouse(conn), body)
    errors = refused.value.errors
    assert [e.split(":")[0] for e in errors] == [f"receipt.csv line {n}" for n in (3, 4, 5, 6, 7)], errors
    assert "unknown product 'NOPE'" in errors[0] and "is on line 2 already" in errors[1]
    assert "expected 2 fields" in errors[3] and "not UTF-8" in errors[4]
    assert _rows(conn) == before
    # The serial that exists already is named too (checked once the lines themselves are good).
    with pytest.raises(receipt.ReceiptProblems, match="line 3: serial LMP000009 exists already"):
        receipt.receive(
            conn, TEST_ACTOR, settings.secret_key, main_warehouse(conn), b"serial,product\nLMP300001,L\nLMP000009,L\n"
        )
    assert _rows(conn) == before


def test_a_file_without_the_header_or_at_a_non_warehouse_is_refused(
    settings: Settings, conn: psycopg.Connection
) -> None:
    lamp_product(conn)
    with pytest.raises(receipt.ReceiptProblems, match="line 1: the header must be"):
        receipt.receive(conn, TEST_ACTOR, settings.secret_key, main_warehouse(conn), b"LMP1,L\n")
    with pytest.raises(receipt.ReceiptProblems, match="no warehouse 999"):
        receipt.receive(conn, TEST_ACTOR, settings.secret_key, 999, b"serial,product\nLMP400001,L\n")
    with pytest.raises(receipt.ReceiptProblems, match="UTF-16"):
        receipt.receive(
            conn, TEST_ACTOR, settings.secret_key, main_warehouse(conn), "serial,product\n".encode("utf-16")
        )


def test_the_inventory_page_names_the_bad_lines_and_receives_nothing(
    settings: Settings, conn: psycopg.Connection
) -> None:
    lamp_product(conn)
    conn.commit()
    user(settings.database_url, "cara", "call_centre")
    before = _rows(conn)
    conn.commit()
    with TestClient(create_app(settings), follow_redirects=False) as app:
        assert login(app, "cara").status_code == 303
        csrf = csrf_of(app.get("/inventory").text)
        bad = app.post(
            "/inventory/receipts",
            data={"csrf_token": csrf, "location_id": str(main_warehouse(conn))},
            files={"file": ("shipment.csv", b"serial,product\nLMP500001,L\nLMP500002,XX\n", "text/csv")},
        )
        assert bad.status_code == 422
        assert "shipment.csv line 3: unknown product" in bad.text and "Nothing was received" in bad.text
        assert _rows(conn) == before
        conn.commit()
        good = app.post(
            "/inventory/receipts",
            data={"csrf_token": csrf, "location_id": str(main_warehouse(conn))},
            files={"file": ("shipment.csv", b"serial,product\nLMP500001,L\n", "text/csv")},
        )
        assert good.status_code == 303 and "received+1+units" in good.headers["location"]
