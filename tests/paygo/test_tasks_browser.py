"""The daily tasks done on pages in a real browser (Debian's chromium through Playwright), each as the
role that does it (issue 26): the call centre registers a customer and records a sale (the customer found
by the number they give, a unit from the stock, the plan, the deposit, the agent) and its install step;
finance ends one contract as returned and writes another off; an administrator adds an agent and sets a
commission rule; and each page refuses the roles that may not do its task. Numbered screenshots of every
step under build/screenshots/<story>/; no page has a script and not one request leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Page

from backoffice.config import Settings
from paygo.web import create_app
from tests.support import serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.staff import user
from tests.support.tasks import Company, small_company

pytestmark = pytest.mark.browser


@pytest.fixture
def site(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings), "the web app") as url:
        yield url


@pytest.fixture
def company(settings: Settings, conn: psycopg.Connection) -> Company:
    made = small_company(conn, settings.secret_key)
    conn.commit()
    for name, role in (("cara", "call_centre"), ("fin", "finance"), ("ada", "admin"), ("vic", "viewer"),
                       ("fred", "field_agent")):  # fmt: skip
        user(settings.database_url, name, role)
    return made


def _light(page: Page) -> None:
    """The task pages stay light: no script at all (the CSP allows none inline anyway)."""
    assert page.locator("script").count() == 0


def test_call_centre_registers_a_customer_and_records_a_sale(
    site: str, conn: psycopg.Connection, company: Company
) -> None:
    steps = Steps("call centre registers a customer and records a sale")
    serial = company.serials[0]
    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "cara", start="/customers/new")
        page.wait_for_url(site + "/customers/new")
        _light(page)
        page.fill("input[name=name]", "Wanjiru Kamau")
        page.fill("textarea[name=phones]", "0712 345 6")
        page.fill("input[name=national_id]", "23 456 789")
        page.fill("input[name=village]", "Kisumu")
        page.fill("input[name=district]", "Kisumu")
        page.select_option("select[name=language]", "sw")
        steps.shot(page, "new customer form")
        page.click("#customer-new button[type=submit]")
        page.wait_for_load_state()
        assert "is not a phone number" in page.inner_text("#refused")
        assert page.input_value("input[name=name]") == "Wanjiru Kamau"  # what was typed stays
        steps.shot(page, "a short phone number is refused on the form")
        page.fill("textarea[name=phones]", "0712 345 678")
        page.click("#customer-new button[type=submit]")
        page.wait_for_url("**/customers/*?registered=true")
        assert page.inner_text("#done") == "Registered."
        steps.shot(page, "registered")

        # The sale: the customer found by the number they give, as they say it.
        page.click("header >> text=New sale")
        page.wait_for_url(site + "/sales/new")
        _light(page)
        page.fill("#sale-q", "0712 345 678")
        page.click("#find-customer button[type=submit]")
        page.wait_for_load_state()
        assert "Wanjiru Kamau" in page.inner_text("#customer-hits")
        steps.shot(page, "customer found by phone")
        page.click("#customer-hits >> text=Choose")
        page.wait_for_url("**/sales/new?customer=*")
        assert "Wanjiru Kamau" in page.inner_text("#customer")
        page.fill("input[name=serial]", "TSK999999")
        page.select_option("select[name=product_id]", label="SHS-T · Solar kit · asset finance · deposit 2,000.00 KES")
        page.select_option("select[name=agent_id]", label="KE-T1 · Grace Akinyi")
        page.uncheck("input[name=installed]")
        steps.shot(page, "sale form with a serial not in stock")
        page.click("#sale-form button[type=submit]")
        page.wait_for_load_state()
        assert "no unit with serial 'TSK999999'" in page.inner_text("#refused")
        steps.shot(page, "unknown serial refused on the form")
        page.fill("input[name=serial]", serial)
        page.click("#sale-form button[type=submit]")
        page.wait_for_url("**/sales/*?done=signed")
        assert f"unit {serial}" in page.inner_text("#done")
        facts = page.inner_text("#sale")
        assert "2,000.00 KES paid of 2,000.00 KES" in facts and "KE-T1 · Grace Akinyi" in facts
        assert "in stock" in facts
        account = page.url.split("/sales/")[1].split("?")[0]
        steps.shot(page, "contract signed")
        page.click("#install-form button[type=submit]")
        page.wait_for_url("**/sales/*?done=installed")
        assert "is at Wanjiru Kamau's" in page.inner_text("#done") and "(installed)" in page.inner_text("#sale")
        assert page.locator("#install-form").count() == 0
        steps.shot(page, "installed")
    assert browsing.outside == []
    customer, state, deposit = conn.execute(
        """select cu.name, c.state, (select sum(amount) from ledger_entries e where e.contract_id = c.id
                                      and e.status = 'completed' and e.type = 'deposit')
             from contracts c join customers cu on cu.id = c.customer_id where c.account_number = %s""",
        (account,),
    ).fetchone()  # type: ignore[misc]
    assert (customer, state, deposit) == ("Wanjiru Kamau", "active", 200_000)
    assert conn.execute(
        """select u.state, l.place, cu.name from units u join unit_locations l on l.unit_id = u.id
             join customers cu on cu.id = l.customer_id where u.serial = %s""",
        (serial,),
    ).fetchone() == ("installed", "customer", "Wanjiru Kamau")
    assert conn.execute("select count(*) from tokens t join contracts c on c.id = t.contract_id "
                        "where c.account_number = %s", (account,)).fetchone() == (1,)  # fmt: skip
    trail = conn.execute("select action from audit_log where actor = 'cara' order by id").fetchall()
    assert [a for (a,) in trail] == ["customer-created", "contract-signed", "agent-sale-recorded", "unit-install"]


def test_finance_ends_a_contract_and_writes_another_off(site: str, conn: psycopg.Connection, company: Company) -> None:
    steps = Steps("finance ends a contract and writes another off")
    returned, lost = company.accounts
    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "fin", start="/contracts/end")
        page.wait_for_url(site + "/contracts/end")
        _light(page)
        page.fill("#account", "12345678")
        page.click("#find-contract button[type=submit]")
        page.wait_for_load_state()
        assert "no contract with account number '12345678'" in page.inner_text("#refused")
        steps.shot(page, "a mistyped account number")
        page.fill("#account", returned)
        page.click("#find-contract button[type=submit]")
        page.wait_for_load_state()
        assert page.inner_text("#contract-state") == "active" and "Juma Barasa" in page.inner_text("#contract")
        page.check("input[name=state][value=returned]")
        page.fill("textarea[name=note]", "customer moved to Nairobi, gave the kit back")
        steps.shot(page, "contract found and ending chosen")
        page.click("#end-form button[type=submit]")
        page.wait_for_url("**ended=returned")
        assert f"Contract {returned} of Juma Barasa is now returned" in page.inner_text("#done")
        assert page.inner_text("#contract-state") == "returned" and page.locator("#end-form").count() == 0
        steps.shot(page, "contract returned")

        # The write-off, from the contract's own page.
        page.goto(f"{site}/contracts/{lost}")
        page.click("#end-link")
        page.wait_for_url(f"**/contracts/end?account={lost}")
        page.check("input[name=state][value=written_off]")
        page.fill("textarea[name=note]", "unreachable for 200 days")
        steps.shot(page, "write-off chosen")
        page.click("#end-form button[type=submit]")
        page.wait_for_url("**ended=written_off")
        assert "is now written off" in page.inner_text("#done")
        steps.shot(page, "contract written off")
    assert browsing.outside == []
    states = conn.execute("select account_number, state from contracts where account_number = any(%s)",
                          ([returned, lost],)).fetchall()  # fmt: skip
    assert dict(states) == {returned: "returned", lost: "written_off"}
    trail = conn.execute("select action, entity_id from audit_log where actor = 'fin' order by id").fetchall()
    assert trail == [("contract-returned", returned), ("contract-written_off", lost)]


def test_administrator_adds_an_agent_and_sets_commission_rules(
    site: str, settings: Settings, conn: psycopg.Connection, company: Company
) -> None:
    steps = Steps("administrator adds an agent and sets commission rules")
    user(settings.database_url, "otieno", "field_agent")
    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "ada", start="/agents/new")
        page.wait_for_url(site + "/agents/new")
        _light(page)
        page.fill("input[name=code]", "KE-T2")
        page.fill("input[name=name]", "Otieno Were")
        page.select_option("select[name=kind]", "sales_and_field")
        page.fill("input[name=phone]", "+254 711 000 222")
        page.fill("input[name=username]", "cara")
        page.fill("textarea[name=areas]", "Kisumu/Kisumu\nAhero/Kisumu")
        page.click("#agent-new button[type=submit]")
        page.wait_for_load_state()
        assert "cara does not hold the field_agent role" in page.inner_text("#refused")
        steps.shot(page, "a login without the field agent role is refused")
        page.fill("input[name=username]", "otieno")
        page.click("#agent-new button[type=submit]")
        page.wait_for_url("**/agents/new?added=*")
        assert "Added agent KE-T2 (Otieno Were)" in page.inner_text("#done")
        steps.shot(page, "agent added")
        page.click("#done >> text=their page")
        page.wait_for_url("**/agents/*")
        assert "Otieno Were" in page.content()
        steps.shot(page, "the agent's page")

        page.goto(site + "/commission-rules")
        _light(page)
        page.select_option("select[name=product]", label="SHS-T · Solar kit")
        page.fill("input[name=deposit_share]", "12.5")
        page.fill("input[name=payment_share]", "four")
        page.fill("input[name=payment_months]", "9")
        page.fill("input[name=clawback_days]", "120")
        page.click("#rule-form button[type=submit]")
        page.wait_for_load_state()
        assert "share of each payment: a percentage" in page.inner_text("#refused")
        steps.shot(page, "a share in words is refused")
        page.fill("input[name=payment_share]", "4")
        page.click("#rule-form button[type=submit]")
        page.wait_for_url("**/commission-rules?saved=SHS-T")
        assert "Saved the rule of SHS-T" in page.inner_text("#done")
        rows = page.inner_text("#rules")
        assert "SHS-T\t12.5 %\t4 %\t9 months\t120 days" in rows and "every other product\t10 %\t3 %" in rows
        steps.shot(page, "rule saved")
    assert browsing.outside == []
    agent = conn.execute(
        """select a.kind, su.username, s.kind from agents a join staff_users su on su.id = a.user_id
             join stock_locations s on s.agent_id = a.id where a.code = 'KE-T2'"""
    ).fetchone()
    assert agent == ("sales_and_field", "otieno", "agent")
    assert conn.execute(
        "select deposit_share_bp, payment_share_bp, payment_months, clawback_days from commission_rules "
        "where product_id = %s",
        (company.product_id,),
    ).fetchone() == (1250, 400, 9, 120)
    trail = conn.execute("select action from audit_log where actor = 'ada' order by id").fetchall()
    assert [a for (a,) in trail] == ["agent-created", "commission-rule-set"]


REFUSED = [  # (who, the page of a task that is not theirs)
    ("vic", "/customers/new"),
    ("fin", "/sales/new"),
    ("cara", "/contracts/end"),
    ("fin", "/agents/new"),
    ("cara", "/commission-rules"),
]


def test_each_task_page_refuses_a_role_that_may_not_do_it(site: str, company: Company) -> None:
    steps = Steps("task pages refuse the roles that may not do them")
    with chromium(site) as browsing:
        page = browsing.page
        for who, path in REFUSED:
            log_in(page, site, who, start=path)
            page.wait_for_url(site + path)
            assert page.inner_text("h1") == "Not for your role", (who, path)
            assert page.locator("form.stack").count() == 0
            steps.shot(page, f"{who} refused at {path}")
            page.click("text=Log out")
            page.wait_for_url("**/login")
    assert browsing.outside == []
