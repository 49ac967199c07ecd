"""Finance's tasks that needed the API or the CLI, done on pages in Debian's chromium (a screenshot per
step, issue 26): the suggestions for unmatched money and a confirmed one-click assignment that names the
payment's amount; a payment entered by hand (a reason asked, a repeated reference credited once); a
provider's statement uploaded (a bad line named by its number, then a summary). The call centre is
refused each of these pages, and its forged posts change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from backoffice.customers import repository as customers
from paygo.web import create_app
from tests.backoffice.payments.test_suggest import swapped_typo
from tests.support import count, serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.money import MONEY_NOW, confirmation, make_accounts, make_products
from tests.support.staff import csrf_of, login, user

pytestmark = [pytest.mark.browser, pytest.mark.clock(MONEY_NOW)]
PAID = "select paid_total from contracts where id = %s"


@pytest.fixture
def site(money_settings: Settings) -> Iterator[str]:
    with serve(create_app(money_settings), "the web app") as url:
        yield url


def test_finance_assigns_unmatched_money_from_a_suggestion_in_chromium(
    site: str, money_settings: Settings, conn: psycopg.Connection
) -> None:
    _, flexible = make_products(conn)
    meant, other = make_accounts(conn, money_settings, flexible, 2, "SUGB")
    customers.replace_phones(conn, meant.customer_id, ["+254712345126"])  # the payer's masked number fits
    conn.commit()
    pay = f"{site}/payments/mpesa/c2b/confirmation"
    httpx.post(pay, json=confirmation(swapped_typo(meant.number), "700", txn="SWAP1"))
    typo = other.number[:-1] + str((int(other.number[-1]) + 3) % 10)
    httpx.post(pay, json=confirmation(typo, "35", txn="SLIP2"))
    item = "select u.id from unmatched_payments u join payment_inbox i on i.id = u.inbox_id where provider_txn_id = %s"
    swap1, slip2 = count(conn, item, "SWAP1"), count(conn, item, "SLIP2")
    paid_before = count(conn, PAID, meant.contract_id)
    conn.commit()
    user(money_settings.database_url, "fred", "finance")
    steps = Steps("finance assigns unmatched money from a suggestion")

    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "fred", start="/payments/waiting")
        page.wait_for_url("**/payments/waiting")
        ideas = page.locator(f"#ideas-{swap1} li")
        first = ideas.first.inner_text()
        assert meant.number in first and "swapped" in first and "payer's number" in first and "20 days" in first
        steps.shot(page, "suggestions for the money waiting")

        page.click(f"#ideas-{swap1} li >> nth=0 >> text=Assign")
        page.wait_for_url(f"**/payments/waiting/{swap1}/assign?account={meant.number}")
        assert page.inner_text("#amount") == "700.00 KES" and meant.number in page.inner_text("#target")
        confirm = page.locator("#confirm button")
        assert confirm.inner_text() == f"Yes, credit 700.00 KES to {meant.number}"
        steps.shot(page, "the confirmation names the amount")
        with page.expect_navigation():
            confirm.click()
        done = page.inner_text("#done")
        assert f"Payment #{swap1} assigned: its 700.00 KES credited to {meant.number}" in done
        steps.shot(page, "assigned")
        conn.commit()
        assert count(conn, PAID, meant.contract_id) == paid_before + 70_000
        assert count(conn, "select count(*) from audit_log where actor = 'fred' and action = 'assign'") == 1
        conn.commit()

        # "Find contract" forgives the slip the payer made: the search finds the account one digit away.
        page.click(f"#item-{slip2} >> text=Find contract")
        page.wait_for_url(f"**item={slip2}**")
        assert other.number in page.inner_text("#hits")
        steps.shot(page, "find contract forgives a slip")
        # A refreshed confirmation of a decided payment is refused, saying why.
        page.goto(f"{site}/payments/waiting/{swap1}/assign?account={meant.number}")
        assert "already assigned" in page.inner_text("#error")
        steps.shot(page, "a decided payment cannot be assigned again")
        assert browsing.outside == []


def test_finance_enters_a_payment_by_hand_and_imports_a_statement_in_chromium(
    site: str, money_settings: Settings, conn: psycopg.Connection, tmp_path: Path
) -> None:
    _, flexible = make_products(conn)
    acct, other = make_accounts(conn, money_settings, flexible, 2, "MAN")
    httpx.post(f"{site}/payments/mpesa/c2b/confirmation", json=confirmation(other.number, "70", txn="CALLBACK1"))
    paid_before = count(conn, PAID, acct.contract_id)
    conn.commit()
    user(money_settings.database_url, "fred", "finance")
    steps = Steps("finance enters a payment by hand and imports a statement")

    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "fred", start="/payments/manual")
        page.wait_for_url("**/payments/manual")
        page.fill("input[name=reference]", "RCPT-0001")
        page.fill("input[name=account]", acct.number)
        page.fill("input[name=amount]", "35O")  # a letter O for a zero
        page.fill("input[name=reason]", "cash at the Kisumu agent")
        steps.shot(page, "the form")
        with page.expect_navigation():
            page.click("#manual button")
        assert "'35O' is not an amount" in page.inner_text("#error")
        assert page.input_value("input[name=reason]") == "cash at the Kisumu agent"  # what was typed stays
        steps.shot(page, "a bad amount is explained")
        page.fill("input[name=amount]", "350")
        with page.expect_navigation():
            page.click("#manual button")
        assert f"350 KES credited to {acct.number}" in page.inner_text("#done")
        steps.shot(page, "credited")
        # The same receipt entered again: credited once.
        page.fill("input[name=reference]", "RCPT-0001")
        page.fill("input[name=account]", acct.number)
        page.fill("input[name=amount]", "350")
        page.fill("input[name=reason]", "cash at the Kisumu agent")
        with page.expect_navigation():
            page.click("#manual button")
        assert "entered before" in page.inner_text("#done") and "nothing was credited twice" in page.inner_text("#done")
        steps.shot(page, "a repeated reference is credited once")
        conn.commit()
        assert count(conn, PAID, acct.contract_id) == paid_before + 35_000
        reason = conn.execute(
            "select after->>'reason' from audit_log where actor = 'fred' and action = 'manual-entry' order by id"
        ).fetchone()
        assert reason == ("cash at the Kisumu agent",)
        conn.commit()

        # A statement with a bad line is refused whole, naming the line.
        bad = tmp_path / "statement-bad.csv"
        bad.write_text("transaction_id,paid_at,account,amount,currency\n"
                       f"NEW1,2026-11-22T10:00:00+03:00,{acct.number},70,KES\n"
                       f"NEW2,2026-11-22T10:05:00+03:00,{acct.number},seventy,KES\n")  # fmt: skip
        page.click("nav >> text=Import statement")
        page.wait_for_url("**/payments/statement")
        page.set_input_files("input[name=statement]", str(bad))
        with page.expect_navigation():
            page.click("#statement button")
        assert "nothing was imported" in page.inner_text("#error")
        problem = "statement-bad.csv line 3: amount 'seventy' is not a plain decimal number"
        assert problem in page.inner_text("#problems")
        steps.shot(page, "a bad line is named")
        good = tmp_path / "statement.csv"
        good.write_text("transaction_id,paid_at,account,amount,currency\n"
                        f"CALLBACK1,2026-11-22T09:38:45+03:00,{other.number},70,KES\n"
                        f"NEW1,2026-11-22T10:00:00+03:00,{acct.number},70,KES\n"
                        "NEW3,2026-11-22T10:10:00+03:00,99999999,70,KES\n")  # fmt: skip
        page.set_input_files("input[name=statement]", str(good))
        with page.expect_navigation():
            page.click("#statement button")
        summary = {k: page.inner_text(f"#{k}") for k in ("matched", "credited", "unmatched", "mismatches")}
        assert summary == {"matched": "1", "credited": "1", "unmatched": "1", "mismatches": "0"}, summary
        steps.shot(page, "the statement's summary")
        # Imported again: nothing is created twice, every line is now a duplicate.
        page.set_input_files("input[name=statement]", str(good))
        with page.expect_navigation():
            page.click("#statement button")
        assert page.inner_text("#credited") == "0" and page.inner_text("#unmatched") == "0"
        steps.shot(page, "imported again nothing twice")
        conn.commit()
        assert count(conn, PAID, acct.contract_id) == paid_before + 35_000 + 7_000
        assert count(conn, "select count(*) from audit_log where actor = 'fred' and action = 'statement-created'") == 2
        assert browsing.outside == []


def test_the_call_centre_is_refused_finances_pages(
    site: str, money_settings: Settings, conn: psycopg.Connection
) -> None:
    _, flexible = make_products(conn)
    (acct,) = make_accounts(conn, money_settings, flexible, 1, "REF")
    user(money_settings.database_url, "cara", "call_centre")
    inbox = count(conn, "select count(*) from payment_inbox")
    conn.commit()
    with httpx.Client(base_url=site) as web:
        login(web, "cara")
        csrf = csrf_of(web.get("/payments").text)
        for path in ("/payments/manual", "/payments/statement", "/payments/waiting/1/assign?account=" + acct.number):
            refused = web.get(path)
            assert refused.status_code == 403 and "needs the finance role" in refused.text, path
        posted = web.post("/payments/manual", data={"csrf_token": csrf, "reference": "X1", "account": acct.number,
                                                    "amount": "100", "currency": "KES", "reason": "try"})  # fmt: skip
        assert posted.status_code == 403
        header = b"transaction_id,paid_at,account,amount,currency\n"
        upload = web.post("/payments/statement", data={"csrf_token": csrf, "provider": "mpesa"},
                          files={"statement": ("s.csv", header)})  # fmt: skip
        assert upload.status_code == 403
    assert count(conn, "select count(*) from payment_inbox") == inbox


def test_a_manual_payment_without_a_reason_is_refused_on_the_page(
    site: str, money_settings: Settings, conn: psycopg.Connection
) -> None:
    _, flexible = make_products(conn)
    (acct,) = make_accounts(conn, money_settings, flexible, 1, "RSN")
    user(money_settings.database_url, "fred", "finance")
    inbox = count(conn, "select count(*) from payment_inbox")
    conn.commit()
    with httpx.Client(base_url=site) as web:
        login(web, "fred")
        csrf = csrf_of(web.get("/payments/manual").text)
        form = {"csrf_token": csrf, "reference": "R1", "account": acct.number, "amount": "100", "currency": "KES"}
        refused = web.post("/payments/manual", data=form | {"reason": "  "})
        assert refused.status_code == 400 and "say why the payment is entered by hand" in refused.text
        bad_time = web.post("/payments/manual", data=form | {"reason": "bank", "paid_at": "yesterday"})
        assert bad_time.status_code == 400 and "yesterday&#39; is not a date and time" in bad_time.text
        bad_currency = web.post("/payments/manual", data=form | {"reason": "bank", "currency": "K$"})
        assert bad_currency.status_code in (400, 422) and "Refused" in bad_currency.text
    conn.commit()
    assert count(conn, "select count(*) from payment_inbox where status <> 'rejected'") == inbox
