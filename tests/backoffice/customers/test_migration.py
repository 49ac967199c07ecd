"""Migration 0017 moves the old single ``customers.phone`` into ``customer_phones`` in E.164; a number
that was not international (its country unknown) is kept in ``legacy_phone`` to be entered again."""

from __future__ import annotations

import uuid

import psycopg

from backoffice.config import Settings
from backoffice.migrate import available


def test_old_phone_numbers_move_into_the_phones_table(base_settings: Settings) -> None:
    name = f"paygo_test_mig_{uuid.uuid4().hex[:10]}"
    admin_url = f"postgresql://paygo@127.0.0.1:{base_settings.pg_port}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"create database {name}")
    try:
        with psycopg.connect(f"postgresql://paygo@127.0.0.1:{base_settings.pg_port}/{name}", autocommit=True) as c:
            for m in available():
                if m.version == "0017":
                    c.execute("""insert into customers (name, phone) values ('Amina', '254712345678'),
                                 ('Baraka', '0712 345 678'), ('Chebet', null), ('Juma', '+254 733-000 111')""")
                c.execute(m.sql.encode())
            rows = c.execute("""select c.name, c.legacy_phone, p.e164 from customers c
                                left join customer_phones p on p.customer_id = c.id order by c.id""").fetchall()
            words = [w for (w,) in c.execute("select word from customer_name_words order by word")]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")
    assert rows == [("Amina", None, "+254712345678"), ("Baraka", "0712 345 678", None), ("Chebet", None, None),
                    ("Juma", None, "+254733000111")]  # fmt: skip
    assert words == ["amina", "baraka", "chebet", "juma"]  # the search box's vocabulary of names
