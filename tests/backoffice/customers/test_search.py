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


# --- what callers say (issue 26) ---------------------------------------------------------------------


def _first_unit(conn: psycopg.Connection) -> tuple[str, int]:
    serial, customer = conn.execute(
        "select u.serial, c.customer_id from contracts c join units u on u.id = c.unit_id where u.serial = 'SHS000001'"
    ).fetchone()  # type: ignore[misc]
    return serial, customer


@pytest.mark.parametrize("typed", ["000001", "00 0001", "1", "01"])
def test_a_serials_digits_without_its_prefix_find_its_unit(conn: psycopg.Connection, people: dict[str, int],
                                                           typed: str) -> None:  # fmt: skip
    serial, customer = _first_unit(conn)
    hits = search(conn, typed, region="KE")
    assert (hits[0].serial, hits[0].customer_id, hits[0].matched) == (serial, customer, "serial")
    assert hits[0].score == 0.95  # below an exact serial, phone or account
    assert "STK000001" in {h.serial for h in hits}  # a unit in stock with that number comes after


def test_a_serials_last_digits_list_the_units_ending_so(conn: psycopg.Connection, people: dict[str, int]) -> None:
    hits = search(conn, "0012", region="KE")
    assert hits[0].serial == "SHS000012" and hits[0].matched == "serial"
    assert all(h.serial is not None and h.serial.endswith("0012") for h in hits if h.matched == "serial")
    assert search(conn, "0", region="KE") == []  # a serial's number is never only zeros


@pytest.fixture
def cambodian(conn: psycopg.Connection, people: dict[str, int]) -> int:
    made = service.create_customer(conn, NewCustomer(name="Sokha Chan", phones=["+855 97 058 6261"]), "KE", ACTOR)
    conn.commit()
    return made.id


@pytest.mark.parametrize("typed", ["097 058 6261", "(097) 058-6261", "0970586261", "97 058 6261"])
def test_a_national_form_of_each_country_served_finds_its_customer(conn: psycopg.Connection, cambodian: int,
                                                                   typed: str) -> None:  # fmt: skip
    hits = search(conn, typed, regions=["KE", "KH"])
    assert [(h.customer_id, h.matched, h.matched_text, h.score) for h in hits] == [
        (cambodian, "phone", "+855970586261", 1.0)]  # fmt: skip
    assert search(conn, typed, regions=["KE"]) == []  # a company in Kenya alone reads it as no number


def test_the_countries_served_come_from_the_settings(settings: Settings, conn: psycopg.Connection,
                                                     cambodian: int) -> None:  # fmt: skip
    from fastapi.testclient import TestClient

    from paygo.web import create_app
    from tests.support.staff import api_token

    served = settings.model_copy(update={"phone_regions": "KH"})
    assert served.search_phone_regions == ["KE", "KH"]
    for which, expected in ((settings, []), (served, [cambodian])):
        with TestClient(create_app(which), headers=api_token(which.database_url, "call_centre")) as api:
            found = api.get("/api/v1/search", params={"q": "097 058 6261"})
            assert found.status_code == 200, found.text
            assert [h["customer_id"] for h in found.json()] == expected


def test_phone_regions_are_country_codes() -> None:
    from backoffice.config import SettingsError, load_settings

    assert load_settings(environment="test", phone_regions=" kh, ug ,KH").search_phone_regions == ["KE", "KH", "UG"]
    assert load_settings(environment="test").search_phone_regions == ["KE"]
    with pytest.raises((SettingsError, ValueError), match="PAYGO_PHONE_REGIONS"):
        load_settings(environment="test", phone_regions="KE,Cambodia")


@pytest.mark.parametrize(
    "typed",
    [
        "Anima Odhaimbo",  # a slip in each word (two swaps)
        "Amina Odhaimob",  # two slips in one word
        "Amna Odhiambbo",  # a letter dropped, a letter doubled
        "Aminah Odihambo",  # a letter added, two swapped
        "odhaimbo amina",  # in the other order, lower case
    ],
)
def test_a_name_with_two_slips_finds_the_right_person_first(conn: psycopg.Connection, people: dict[str, int],
                                                            typed: str) -> None:  # fmt: skip
    hits = search(conn, typed, region="KE")
    assert hits and hits[0].customer_id == people["Amina Odhiambo"] and hits[0].matched == "name"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_word_beyond_recognition_leaves_the_others_to_find(conn: psycopg.Connection, people: dict[str, int]) -> None:
    assert search(conn, "Mohamed Xqzw Barasa", region="KE")[0].customer_id == people["Mohamed Barasa"]  # no such word
    hits = search(conn, "Mohamed Amina Barasa", region="KE")  # a name word, but no such name
    assert hits[0].customer_id == people["Mohamed Barasa"]
