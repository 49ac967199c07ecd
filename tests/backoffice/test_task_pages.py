"""The daily tasks' pages (issue 26) over HTTP: bad input comes back on the form with the reason (never a
500) and changes nothing; a role that may not do the task is refused and changes nothing; what is done
is audited under the login of the person who did it."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from backoffice.config import Settings
from paygo.web import create_app
from tests.support.staff import csrf_of, login, user
from tests.support.tasks import Company, small_company


@pytest.fixture
def company(settings: Settings, conn: psycopg.Connection) -> Company:
    made = small_company(conn, settings.secret_key)
    conn.commit()
    for name, role in (("cara", "call_centre"), ("fin", "finance"), ("ada", "admin"), ("vic", "viewer"),
                       ("fred", "field_agent")):  # fmt: skip
        user(settings.database_url, name, role)
    return made


def _count(conn: psycopg.Connection, table: str) -> int:
    n = conn.execute(f"select count(*) from {table}").fetchone()[0]  # type: ignore[index]
    conn.commit()
    return int(n)


def test_registering_a_customer_refuses_bad_input_on_the_form(
    settings: Settings, conn: psycopg.Connection, company: Company
) -> None:
    before = _count(conn, "customers")
    with TestClient(create_app(settings)) as browser:
        login(browser, "cara")  # type: ignore[arg-type]
        form = browser.get("/customers/new")
        assert form.status_code == 200 and 'id="customer-new"' in form.text
        data = {"name": "Wanjiru Kamau", "phones": "0712 345 6", "national_id": "12 345 678", "village": "Kisumu",
                "district": "Kisumu", "language": "sw", "csrf_token": csrf_of(form.text)}  # fmt: skip
        bad = browser.post("/customers/new", data=data)
        assert bad.status_code == 422 and "is not a phone number" in bad.text and "Wanjiru Kamau" in bad.text
        for field, value, reason in (("name", "  ", "name"), ("national_id", "x", "national id"),
                                     ("language", "fr", "language")):  # fmt: skip
            refused = browser.post("/customers/new", data={**data, "phones": "0712 345 678", field: value})
            assert refused.status_code == 422 and reason in refused.text, (field, refused.text[-400:])
        done = browser.post("/customers/new", data={**data, "phones": "0712 345 678"}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"].endswith("?registered=true")
        page = browser.get(done.headers["location"])
        assert "Registered." in page.text and "/sales/new?customer=" in page.text
        again = browser.post("/customers/new", data={**data, "phones": "0722 000 111", "name": "Another"})
        assert again.status_code == 422 and "national id 12345678 is already customer" in again.text
    assert _count(conn, "customers") == before + 1
    row = conn.execute(
        """select c.national_id, c.district, c.language, p.e164 from customers c
             join customer_phones p on p.customer_id = c.id where c.name = 'Wanjiru Kamau'"""
    ).fetchone()
    assert row == ("12345678", "Kisumu", "sw", "+254712345678")
    assert conn.execute("select actor from audit_log where action = 'customer-created'").fetchall() == [("cara",)]


def test_a_sale_refuses_bad_input_on_the_form_and_keeps_nothing(
    settings: Settings, conn: psycopg.Connection, company: Company
) -> None:
    customer = conn.execute("select id from customers order by id limit 1").fetchone()[0]  # type: ignore[index]
    sold_serial = conn.execute(
        "select u.serial from contracts c join units u on u.id = c.unit_id where c.account_number = %s",
        (company.accounts[0],),
    ).fetchone()[0]  # type: ignore[index]
    conn.commit()
    before = (_count(conn, "contracts"), _count(conn, "agent_sales"), _count(conn, "stock_moves"))
    with TestClient(create_app(settings)) as browser:
        login(browser, "cara")  # type: ignore[arg-type]
        form = browser.get("/sales/new", params={"customer": customer})
        assert form.status_code == 200 and company.serials[0] in form.text
        data = {"customer_id": str(customer), "serial": company.serials[0], "product_id": "", "agent_id": "",
                "deposit_paid": "true", "installed": "true", "csrf_token": csrf_of(form.text)}  # fmt: skip
        for change, reason in (
            ({"serial": "NOPE999"}, "no unit with serial"),
            ({"serial": ""}, "pick the unit"),
            ({"serial": sold_serial}, "is sold already"),
            ({"product_id": "999999"}, "no product 999999"),
            ({"product_id": "abc"}, "choose the product"),
            ({"agent_id": "999999"}, "no agent 999999"),
            ({"customer_id": "999999"}, "not on the register"),
        ):
            refused = browser.post("/sales/new", data={**data, **change})
            assert refused.status_code == 422 and reason in refused.text, (change, refused.text[-500:])
        assert browser.get("/sales/99999999").status_code == 404
        nothing = browser.post("/sales/99999999/install", data={"csrf_token": data["csrf_token"]})
        assert nothing.status_code == 404 and "no contract" in nothing.text
        install = f"/sales/{company.accounts[0]}/install"
        first = browser.post(install, data={"csrf_token": data["csrf_token"]}, follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"].endswith("?done=installed")
        twice = browser.post(install, data={"csrf_token": data["csrf_token"]})
        assert twice.status_code == 409 and "a unit installed (customer) cannot be moved by install" in twice.text
    assert (_count(conn, "contracts"), _count(conn, "agent_sales")) == before[:2]


def test_ending_a_contract_refuses_bad_input_on_the_form(
    settings: Settings, conn: psycopg.Connection, company: Company
) -> None:
    account = company.accounts[0]
    with TestClient(create_app(settings)) as browser:
        login(browser, "fin")  # type: ignore[arg-type]
        unknown = browser.get("/contracts/end", params={"account": "12345678"})
        assert unknown.status_code == 404 and "no contract with account number" in unknown.text
        form = browser.get("/contracts/end", params={"account": account})
        assert form.status_code == 200 and 'id="end-form"' in form.text
        token = csrf_of(form.text)
        no_state = browser.post("/contracts/end", data={"account": account, "state": "", "csrf_token": token})
        assert no_state.status_code == 422 and "say how the contract ended" in no_state.text
        odd = browser.post("/contracts/end", data={"account": account, "state": "paid_off", "csrf_token": token})
        assert odd.status_code == 422
        done = browser.post("/contracts/end", data={"account": account, "state": "written_off", "note": "moved away",
                                                    "csrf_token": token}, follow_redirects=False)  # fmt: skip
        assert done.status_code == 303
        assert "is now written off" in browser.get(done.headers["location"]).text
        twice = browser.post("/contracts/end", data={"account": account, "state": "returned", "csrf_token": token})
        assert twice.status_code == 409 and "is written_off; only active" in twice.text
        missing = browser.post("/contracts/end", data={"account": "nope", "state": "returned", "csrf_token": token})
        assert missing.status_code == 404 and "no contract with account number" in missing.text
    assert conn.execute("select state from contracts where account_number = %s", (account,)).fetchone() == (
        "written_off",
    )
    assert conn.execute(
        "select actor, after->>'note' from audit_log where action = 'contract-written_off'"
    ).fetchall() == [("fin", "moved away")]


def test_adding_an_agent_and_a_commission_rule_refuse_bad_input_on_the_form(
    settings: Settings, conn: psycopg.Connection, company: Company
) -> None:
    before = _count(conn, "agents"), _count(conn, "commission_rules")
    with TestClient(create_app(settings)) as browser:
        login(browser, "ada")  # type: ignore[arg-type]
        form = browser.get("/agents/new")
        token = csrf_of(form.text)
        data = {"code": "KE-T9", "name": "Otieno", "kind": "field", "phone": "", "username": "", "areas": "",
                "csrf_token": token}  # fmt: skip
        for change, status, reason in (
            ({"code": "has space"}, 422, "code"),
            ({"name": ""}, 422, "name"),
            ({"kind": "boss"}, 422, "kind"),
            ({"phone": "call me"}, 422, "phone"),
            ({"username": "cara"}, 409, "does not hold the field_agent role"),
            ({"username": "nobody"}, 409, "no staff login"),
            ({"code": "KE-T1"}, 409, "exists already"),
        ):
            refused = browser.post("/agents/new", data={**data, **change})
            assert refused.status_code == status and reason in refused.text, (change, refused.text[-500:])
        rules = browser.get("/commission-rules")
        rule = {"product": "", "deposit_share": "10", "payment_share": "3", "payment_months": "6",
                "clawback_days": "90", "csrf_token": csrf_of(rules.text)}  # fmt: skip
        for change, reason in (
            ({"deposit_share": "ten"}, "a percentage"),
            ({"payment_share": "150"}, "from 0 to 100"),
            ({"payment_share": "1.234"}, "at most two decimals"),
            ({"payment_months": "-1"}, "a whole number"),
            ({"clawback_days": "9999"}, "from 0 to 3650"),
            ({"product": "999999"}, "choose the product"),
        ):
            refused = browser.post("/commission-rules", data={**rule, **change})
            assert refused.status_code == 422 and reason in refused.text, (change, refused.text[-500:])
    assert (_count(conn, "agents"), _count(conn, "commission_rules")) == before
    assert conn.execute("select count(*) from audit_log where action in ('agent-created', 'commission-rule-set') "
                        "and actor = 'ada'").fetchone() == (0,)  # fmt: skip


PAGES = [  # (page, roles that may not open it)
    ("/customers/new", ("finance", "viewer", "field_agent")),
    ("/sales/new", ("finance", "viewer", "field_agent")),
    ("/contracts/end", ("call_centre", "viewer", "field_agent")),
    ("/agents/new", ("call_centre", "finance", "viewer", "field_agent")),
    ("/commission-rules", ("call_centre", "finance", "viewer", "field_agent")),
]
LOGINS = {"call_centre": "cara", "finance": "fin", "viewer": "vic", "field_agent": "fred"}


def test_roles_that_may_not_do_a_task_are_refused_and_change_nothing(
    settings: Settings, conn: psycopg.Connection, company: Company
) -> None:
    tables = ("customers", "contracts", "agents", "commission_rules", "audit_log", "stock_moves")
    before = {t: _count(conn, t) for t in tables}
    posts = {
        "/customers/new": {"name": "Intruder", "phones": "0712 999 999"},
        "/sales/new": {"customer_id": "1", "serial": company.serials[0]},
        "/contracts/end": {"account": company.accounts[0], "state": "written_off"},
        "/agents/new": {"code": "X1", "name": "Intruder"},
        "/commission-rules": {"product": "", "deposit_share": "100", "payment_share": "100", "payment_months": "120",
                              "clawback_days": "0"},
    }  # fmt: skip
    for role, name in LOGINS.items():
        with TestClient(create_app(settings)) as browser:
            login(browser, name)  # type: ignore[arg-type]
            token = csrf_of(browser.get("/account/password").text)
            for path, refused_roles in PAGES:
                if role not in refused_roles:
                    continue
                page = browser.get(path)
                assert page.status_code == 403 and "Not for your role" in page.text, (role, path)
                post = browser.post(path, data={**posts[path], "csrf_token": token})
                assert post.status_code == 403, (role, path, post.status_code)
            if role != "call_centre":
                assert browser.post(f"/sales/{company.accounts[0]}/install",
                                    data={"csrf_token": token}).status_code == 403  # fmt: skip
    after = {t: _count(conn, t) for t in tables}
    assert {t: after[t] for t in tables if t != "audit_log"} == {t: before[t] for t in tables if t != "audit_log"}
    assert conn.execute(
        "select count(*) from audit_log where action in ('customer-created', 'contract-signed', "
        "'contract-written_off', 'agent-created', 'commission-rule-set') and actor <> 'test-setup'"
    ).fetchone() == (0,)


def test_the_inventory_install_step_names_the_customer_by_the_sales_account_number(
    settings: Settings, conn: psycopg.Connection, company: Company
) -> None:
    account = company.accounts[1]
    serial, customer = conn.execute(
        "select u.serial, c.customer_id from contracts c join units u on u.id = c.unit_id where c.account_number = %s",
        (account,),
    ).fetchone()  # type: ignore[misc]
    conn.commit()
    with TestClient(create_app(settings)) as browser:
        login(browser, "cara")  # type: ignore[arg-type]
        page = browser.get("/inventory", params={"q": serial})
        assert 'name="account_number"' in page.text and 'name="customer_id"' not in page.text
        data = {"serial": serial, "action": "install", "csrf_token": csrf_of(page.text)}
        unknown = browser.post("/inventory/moves", data={**data, "account_number": "12345678"})
        assert unknown.status_code == 404 and "No contract with account number" in unknown.text
        done = browser.post("/inventory/moves", data={**data, "account_number": account}, follow_redirects=False)
        assert done.status_code == 303
    assert conn.execute(
        "select u.state, l.customer_id from units u join unit_locations l on l.unit_id = u.id where u.serial = %s",
        (serial,),
    ).fetchone() == ("installed", customer)
