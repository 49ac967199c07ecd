"""Paging, sorting and filters of the list pages (backoffice/listing.py) over real HTTP and PostgreSQL: no
silent cap (every row is reachable, pages never overlap), orders from the allow-list only, filters that
keep what they say, and a bad page, order or filter answered with a 422 page that names it, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import psycopg
import pytest

from backoffice import clock
from backoffice.config import Settings
from backoffice.listing import BadListQuery, parse
from backoffice.registry.schemas import UnitList
from devtools import demo_data
from paygo.web import create_app
from tests.support import serve
from tests.support.staff import login, user

SERIAL = re.compile(r'<a href="/units/([A-Z0-9]+)" class="serial">')
TOTAL = re.compile(r"of ([\d,]+) · page")
CUSTOMERS = 30  # + 10 units in stock: 40 units, more than the smallest page


@pytest.fixture
def site(settings: Settings, conn: psycopg.Connection) -> Iterator[str]:
    demo_data.seed(conn, settings.secret_key, customers=CUSTOMERS)
    conn.commit()
    user(settings.database_url, "cara", "call_centre")
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
def web(site: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site, follow_redirects=True) as client:
        login(client, "cara")
        yield client


def _serials(page: str) -> list[str]:
    return SERIAL.findall(page)


def _total(page: str) -> int:
    found = TOTAL.search(page)
    assert found, "no row count on the page"
    return int(found.group(1).replace(",", ""))


def test_every_unit_is_reachable_page_by_page_in_either_order(web: httpx.Client, conn: psycopg.Connection) -> None:
    every = [r[0] for r in conn.execute("select serial from units order by serial")]
    assert len(every) > 25
    seen: list[str] = []
    for number in range(1, 10):
        reply = web.get("/", params={"per": 25, "page": number})
        assert reply.status_code == 200
        assert _total(reply.text) == len(every)
        seen += _serials(reply.text)
        if 'rel="next"' not in reply.text:
            break
    assert seen == every  # in order, nothing twice, nothing left out
    backwards = web.get("/", params={"per": 200, "sort": "-serial"})
    assert _serials(backwards.text) == every[::-1]
    past_the_end = web.get("/", params={"per": 25, "page": 50})
    assert past_the_end.status_code == 200 and _serials(past_the_end.text) == []


def test_filters_keep_what_they_say(web: httpx.Client, conn: psycopg.Connection) -> None:
    stocked = [r[0] for r in conn.execute("select serial from units where state = 'in_stock' order by serial")]
    assert stocked
    in_stock = web.get("/", params={"state": "in_stock", "per": 200})
    assert _serials(in_stock.text) == stocked
    village, serials = conn.execute(
        """select cu.village, array_agg(u.serial order by u.serial) from contracts c
             join customers cu on cu.id = c.customer_id join units u on u.id = c.unit_id
            group by cu.village order by count(*) desc, cu.village limit 1"""
    ).fetchone()  # type: ignore[misc]
    by_area = web.get("/", params={"area": village.lower(), "per": 200})
    # An area is a village or a district: a town's name also finds the units of its district's villages.
    (in_area,) = conn.execute(
        """select array_agg(u.serial order by u.serial) from contracts c
             join customers cu on cu.id = c.customer_id join units u on u.id = c.unit_id
            where cu.village ilike %(name)s or cu.district ilike %(name)s""",
        {"name": village},
    ).fetchone()  # type: ignore[misc]
    assert set(serials) <= set(in_area)
    assert _serials(by_area.text) == in_area
    # One contract whose paid credit ran out yesterday: the only one in arrears.
    account, serial = conn.execute(
        """select c.account_number, u.serial from contracts c join units u on u.id = c.unit_id
            where c.state = 'active' order by c.id limit 1"""
    ).fetchone()  # type: ignore[misc]
    conn.execute("update contracts set credit_end = case when account_number = %s then %s else %s end",
                 (account, clock.utc_now() - timedelta(days=1), clock.utc_now() + timedelta(days=30)))  # fmt: skip
    conn.commit()
    arrears = web.get("/", params={"arrears": "true", "per": 200})
    assert _serials(arrears.text) == [serial] and "in arrears" in arrears.text
    paid_up = web.get("/", params={"arrears": "false", "per": 200})
    assert serial not in _serials(paid_up.text) and len(_serials(paid_up.text)) == _total(paid_up.text)
    # The filter form keeps the order, and the pages keep the filter.
    sorted_filtered = web.get("/", params={"state": "in_stock", "sort": "-serial", "per": 25})
    assert _serials(sorted_filtered.text) == stocked[::-1][:25]
    assert 'name="sort" value="-serial"' in sorted_filtered.text


def test_tickets_payments_agents_and_alerts_are_paged_sorted_and_filtered(
    web: httpx.Client, conn: psycopg.Connection
) -> None:
    tickets = web.get("/tickets", params={"state": "all", "sort": "-opened"})
    assert tickets.status_code == 200
    total = conn.execute("select count(*) from tickets").fetchone()[0]  # type: ignore[index]
    assert _total(tickets.text) == total and total > 0
    ids = [int(x) for x in re.findall(r'data-ticket="(\d+)"', tickets.text)]
    assert len(ids) == total
    kind = conn.execute("select kind from tickets order by id limit 1").fetchone()[0]  # type: ignore[index]
    only = web.get("/tickets", params={"state": "all", "kind": kind})
    expected = conn.execute("select count(*) from tickets where kind = %s", (kind,)).fetchone()[0]  # type: ignore[index]
    assert _total(only.text) == expected
    payments = web.get("/payments", params={"sort": "-amount", "per": 25})
    assert payments.status_code == 200
    inbox = conn.execute("select count(*) from payment_inbox").fetchone()[0]  # type: ignore[index]
    assert ("No payment" in payments.text) if inbox == 0 else _total(payments.text) == inbox
    agents = web.get("/agents", params={"area": "migori", "sort": "-name"})
    assert agents.status_code == 200 and _total(agents.text) == 1 and "KE-A2" in agents.text
    every = web.get("/agents", params={"sort": "-code"})
    assert re.findall(r">(KE-A\d)</a>", every.text) == ["KE-A3", "KE-A2", "KE-A1"]
    stocked = [r[0] for r in conn.execute("select serial from units where state = 'in_stock' order by serial")]
    inventory = web.get("/inventory", params={"state": "in_stock", "sort": "-serial", "per": 25})
    listed_units = inventory.text.split('<table id="units">')[1].split("</table>")[0]
    assert _serials(listed_units) == stocked[::-1] and _total(inventory.text) == len(stocked)
    health = web.get("/fleet-health", params={"sort": "level", "per": 25})
    assert health.status_code == 200 and "Rows" in health.text or "No rows" in health.text


BAD = [
    ("/", {"page": "0"}, "page"),
    ("/", {"page": "two"}, "page"),
    ("/", {"page": "99999999999999999999999"}, "page"),
    ("/", {"per": "7"}, "per"),
    ("/", {"per": "-1"}, "per"),
    ("/", {"sort": "password"}, "sort"),
    ("/", {"sort": "serial; drop table units"}, "sort"),
    ("/", {"sort": "--serial"}, "sort"),
    ("/", {"locked": "maybe"}, "locked"),
    ("/", {"state": "stolen"}, "state"),
    ("/", {"area": "x" * 500}, "area"),
    ("/tickets", {"sort": "due_at"}, "sort"),
    ("/tickets", {"agent_id": "0"}, "agent_id"),
    ("/tickets", {"breached": "perhaps"}, "breached"),
    ("/tickets", {"state": "lost"}, "state"),
    ("/payments", {"since": "2026-13-01"}, "since"),
    ("/payments", {"status": "stolen"}, "status"),
    ("/payments", {"page": "-3", "per": "1000"}, "page"),
    ("/agents", {"kind": "boss"}, "kind"),
    ("/agents", {"sort": "phone"}, "sort"),
    ("/fleet-health", {"kind": "ghost"}, "kind"),
    ("/fleet-health", {"sort": "evidence"}, "sort"),
    ("/inventory", {"location_id": "x"}, "location_id"),
    ("/inventory", {"q": "STK", "sort": "location_id"}, "sort"),
]


def test_a_bad_page_order_or_filter_gets_a_422_page_naming_it(web: httpx.Client) -> None:
    for path, params, named in BAD:
        reply = web.get(path, params=params)
        assert reply.status_code == 422, (path, params, reply.status_code)
        assert "This list cannot be shown that way" in reply.text and named in reply.text, (path, params)
        assert reply.headers["content-type"].startswith("text/html")
        assert "<nav>" in reply.text  # the page keeps its menu: the way on


def test_a_long_list_is_counted_up_to_a_cap_and_still_paged_to_its_end(
    settings: Settings, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backoffice import listing
    from backoffice.registry import repository

    demo_data.seed(conn, settings.secret_key, customers=30)
    every = [r[0] for r in conn.execute("select serial from units order by serial")]
    monkeypatch.setattr(listing, "COUNT_CAP", 30)  # fewer than the 40 units
    first = repository.units_page(conn, parse(UnitList, {"per": "25"}))
    assert (first.total_known, first.total, first.has_next) == (False, 31, True)
    last = repository.units_page(conn, parse(UnitList, {"per": "25", "page": "2"}))
    assert not last.has_next and [u.serial for u in first.rows + last.rows] == every


def test_the_query_model_links_keep_the_filters_and_refuse_unknown_orders() -> None:
    q = parse(UnitList, {"state": "installed", "sort": "-credit", "page": "3", "per": "25", "junk": "x", "area": ""})
    assert (q.state, q.sort_key, q.descending, q.offset) == ("installed", "credit", True, 50)
    assert q.link(page=4) == "?page=4&per=25&sort=-credit&state=installed"
    assert q.sort_link("credit") == "?per=25&sort=credit&state=installed"  # the other way, from page 1
    assert q.sort_link("serial") == "?per=25&state=installed"  # serial ascending is the default
    with pytest.raises(BadListQuery, match="sort"):
        parse(UnitList, {"sort": "customer_name"})  # a column, not a key of the allow-list
