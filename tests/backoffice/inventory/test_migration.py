"""Migration 0023 on a database that already has units in the old states: each gets its one location
row (in stock at the main warehouse, installed at its contract's customer, retired gone), and the old
states stay valid."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from backoffice.config import Settings
from backoffice.migrate import available


@pytest.fixture
def empty_db(base_settings: Settings) -> Iterator[str]:
    name = f"paygo_test_{uuid.uuid4().hex[:12]}"
    admin = {"host": "127.0.0.1", "port": base_settings.pg_port, "user": "paygo", "autocommit": True}
    with psycopg.connect(dbname="postgres", **admin) as conn:  # type: ignore[arg-type]
        conn.execute(f"create database {name}")
    yield f"postgresql://paygo@127.0.0.1:{base_settings.pg_port}/{name}"
    with psycopg.connect(dbname="postgres", **admin) as conn:  # type: ignore[arg-type]
        conn.execute(f"drop database if exists {name} with (force)")


def test_existing_units_get_their_place(empty_db: str) -> None:
    before = [m for m in available() if m.version < "0023"]
    inventory = next(m for m in available() if m.version == "0023")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        for m in before:
            with conn.transaction():
                conn.execute(m.sql.encode())
        product = conn.execute(
            "insert into products (code, name, business_model, currency) "
            "values ('L', 'l', 'flexible', 'KES') returning id"
        ).fetchone()[0]  # type: ignore[index]
        customer = conn.execute("insert into customers (name) values ('Amina') returning id").fetchone()[0]  # type: ignore[index]
        units = {}
        for serial, state in [("S1", "in_stock"), ("S2", "installed"), ("S3", "installed"), ("S4", "retired")]:
            units[serial] = conn.execute(
                "insert into units (serial, product_id, state) values (%s, %s, %s) returning id",
                (serial, product, state),
            ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "insert into contracts (account_number, customer_id, unit_id, product_id, currency, signed_on) "
            "values ('A1', %s, %s, %s, 'KES', %s)",
            (customer, units["S2"], product, date(2025, 1, 1)),
        )
        with conn.transaction():
            conn.execute(inventory.sql.encode())
        rows = conn.execute(
            """select u.serial, l.place, s.kind, l.customer_id from units u
                 join unit_locations l on l.unit_id = u.id left join stock_locations s on s.id = l.location_id"""
        ).fetchall()
        places = {serial: (place, kind, cust) for serial, place, kind, cust in rows}
        assert places == {
            "S1": ("stock", "warehouse", None),
            "S2": ("customer", None, customer),
            "S3": ("unknown", None, None),
            "S4": ("gone", None, None),
        }
        conn.execute("update units set state = 'returned' where serial = 'S3'")  # the old states stay valid
        conn.execute("update contracts set state = 'repossessed' where account_number = 'A1'")
        assert conn.execute("select ended_at is not null from contracts").fetchone() == (True,)
