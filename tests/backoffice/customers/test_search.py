"""The search box: a phone typed any way, a misspelt name, a serial, an account or a national id finds
the right customer first, and each hit says which field matched."""

from __future__ import annotations

import psycopg
import pytest

from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.customers import service
from backoffice.customers.schemas import NewCustomer
from backoffice.customers.search import search
from devtools import demo_data

ACTOR = Actor("test")


@pytest.fixture
def people(settings: Settings, conn: psycopg.Connection) -> dict[str, int]:
    """The demo company's 12 customers, and some of our own with names close to each other."""
    demo_data.seed(conn, settings.secret_key, customers=12)
    made = {}
    ours = [
        ("Amina Odhiambo", "0712 345 678", "23456789"),
        ("Amina Ouma", "0722 000 111", None),
        ("Aminata Otieno", "+254 733 222 333", None),
        ("Mohamed Barasa", "0744 555 666", "A1234567"),
    ]
    for name, phone, nid in ours:
        made[name] = service.create_customer(conn, NewCustomer(name=name, phones=[phone], national_id=nid), "KE",
                                             ACTOR).id  # fmt: skip
    conn.commit()
    return made


@pytest.mark.parametrize("typed", ["Amena Odiambo", "amina odhiambo", "Odhiambo Amina", "Amina Odhiamb"])
def test_a_misspelt_name_finds_the_right_person_first(conn: psycopg.Connection, people: dict[str, int],
                                                      typed: str) -> None:  # fmt: skip
    hits = search(conn, typed, region="KE")
    assert hits and hits[0].customer_id == people["Amina Odhiambo"] and hits[0].matched == "name"
    assert hits[0].matched_text == "Amina Odhiambo"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("typed", ["0712 345 678", "712 345 678", "+254 712 345 678", "254712345678", "0712-345-678"])
def test_a_phone_with_or_without_its_prefix_finds_its_customer(conn: psycopg.Connection, people: dict[str, int],
                                                               typed: str) -> None:  # fmt: skip
    hits = search(conn, typed, region="KE")
    assert [(h.customer_id, h.matched, h.matched_text, h.score) for h in hits] == [
        (people["Amina Odhiambo"], "phone", "+254712345678", 1.0)]  # fmt: skip


def test_serial_account_and_national_id_are_found_exactly(conn: psycopg.Connection, people: dict[str, int]) -> None:
    serial, account, customer = conn.execute(
        "select u.serial, c.account_number, c.customer_id from contracts c join units u on u.id = c.unit_id "
        "order by c.id limit 1"
    ).fetchone()  # type: ignore[misc]
    for typed, field in [(serial, "serial"), (serial.lower(), "serial"), (account, "account")]:
        hits = search(conn, typed, region="KE")
        assert (hits[0].customer_id, hits[0].serial, hits[0].matched, hits[0].score) == (customer, serial, field, 1.0)
        assert hits[0].url == f"/units/{serial}"
    hits = search(conn, "a123 4567", region="KE")  # a national id typed with a space, lower case
    assert [(h.customer_id, h.matched, h.matched_text) for h in hits] == [
        (people["Mohamed Barasa"], "national_id", "A1234567")]  # fmt: skip
    assert hits[0].url == f"/customers/{people['Mohamed Barasa']}"  # no unit: the customer's page


def test_a_serial_prefix_lists_the_units_it_starts(conn: psycopg.Connection, people: dict[str, int]) -> None:
    hits = search(conn, "SHS00001", limit=20, region="KE")
    assert {h.serial for h in hits} == {f"SHS{i:06d}" for i in range(10, 13)}
    assert all(h.matched == "serial" and h.score < 1 for h in hits)


def test_nothing_or_too_little_finds_nothing(conn: psycopg.Connection, people: dict[str, int]) -> None:
    assert search(conn, "", region="KE") == [] and search(conn, "a", region="KE") == []
    assert search(conn, "Zzyzx Qwerty", region="KE") == []
    assert search(conn, "0799 999 999", region="KE") == []
    assert search(conn, "'; drop table customers; --", region="KE") == []
    assert search(conn, "Amina & | ! ( ) : * \\ '", region="KE") is not None  # tsquery syntax is only text


def test_the_limit_holds(conn: psycopg.Connection, people: dict[str, int]) -> None:
    assert len(search(conn, "Amina", limit=2, region="KE")) == 2
