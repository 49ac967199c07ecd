"""Finance's work page in a real browser (Debian's chromium through Playwright), a screenshot per step:
finance logs in, finds the contract an unmatched payment belongs to by its customer's name and assigns
the money to it (the contract's balance grows), releases a held payment, is refused a refund without a
reason and then refunds with one, and marks the refund done; every decision shows in the trail under
finance's name, and not one request leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from paygo.web import create_app
from tests.support import count, serve
from tests.support.browser import Steps, chromium, log_in
from tests.support.money import MONEY_NOW, Account, confirmation, make_accounts, make_products
from tests.support.staff import user

pytestmark = [pytest.mark.browser, pytest.mark.clock(MONEY_NOW)]


@pytest.fixture
def site(money_settings: Settings) -> Iterator[str]:
    with serve(create_app(money_settings), "the web app") as url:
        yield url


def _typo(acct: Account) -> str:
    return acct.number[:-1] + str((int(acct.number[-1]) + 3) % 10)


def test_finance_works_the_waiting_money_in_chromium(
    site: str, money_settings: Settings, conn: psycopg.Connection
) -> None:
    _, flexible = make_products(conn)
    acct, other = make_accounts(conn, money_settings, flexible, 2, "FIN")
    pay = f"{site}/payments/mpesa/c2b/confirmation"
    assert httpx.post(pay, json=confirmation(_typo(acct), "700", txn="LOST1")).json()["ResultCode"] == 0
    httpx.post(pay, json=confirmation(_typo(acct), "35", txn="LOST2"))
    httpx.post(pay, json=confirmation(other.number, "300000", txn="BIG1"))  # above the ceiling: held
    item = "select u.id from unmatched_payments u join payment_inbox i on i.id = u.inbox_id where provider_txn_id = %s"
    lost1, lost2, big1 = (count(conn, item, txn) for txn in ("LOST1", "LOST2", "BIG1"))
    paid_before = count(conn, "select paid_total from contracts where id = %s", acct.contract_id)
    ledger = "select coalesce(sum(amount), 0) from ledger_entries where contract_id = %s and status = 'completed'"
    ledger_before = count(conn, ledger, acct.contract_id)
    conn.commit()
    user(money_settings.database_url, "fred", "finance")
    steps = Steps("finance assigns releases and refunds")

    with chromium(site) as browsing:
        page = browsing.page
        log_in(page, site, "fred", start="/payments/waiting")
        page.wait_for_url("**/payments/waiting")
        assert page.locator("#unmatched tbody tr").count() == 2 and page.locator("#held tbody tr").count() == 1
        steps.shot(page, "the money waiting")

        # Find the contract by the customer's name, then assign the 700 KES to it from the results.
        page.click(f"#item-{lost1} >> text=Find contract")
        page.wait_for_url(f"**item={lost1}**")
        page.fill("#q", "Customer FIN0")
        page.click("form.search button[type=submit]")
        page.wait_for_url("**q=Customer+FIN0**")
        hits = page.locator("#hits tbody tr")
        assert acct.number in hits.first.inner_text()  # the best match first (the search is fuzzy)
        steps.shot(page, "contract found by name")
        with page.expect_navigation():
            hits.first.locator("button", has_text=f"Assign payment #{lost1} here").click()
        done = page.inner_text("#done")
        assert f"Payment #{lost1} assigned" in done and acct.number in done and "12 days added" in done
        steps.shot(page, "assigned and the balance grew")
        # The contract's balance changed: the page says so, and so do the contract and its ledger.
        paid_after = count(conn, "select paid_total from contracts where id = %s", acct.contract_id)
        conn.commit()
        assert paid_after == paid_before + 70_000 and f"{paid_after / 100:,.2f} KES" in done
        assert count(conn, ledger, acct.contract_id) == ledger_before + 70_000  # the deposit and a payment
        conn.commit()
        page.fill("#q", acct.number)
        page.click("form.search button[type=submit]")
        page.wait_for_url(f"**q={acct.number}**")
        assert f"{paid_after / 100:,.2f} KES" in page.inner_text("#hits")

        # The held payment: checked with the provider, released to the account it was paid to.
        page.fill(f"#item-{big1} input[name=note]", "confirmed with Safaricom")
        with page.expect_navigation():  # (the address already says done=: wait for the new page)
            page.click(f"#item-{big1} form[action$='/release'] button")
        assert f"Payment #{big1} released" in page.inner_text("#done") and other.number in page.inner_text("#done")
        assert page.locator("#held tbody tr").inner_text() == "Nothing held."
        steps.shot(page, "held payment released")

        # A refund without a reason is refused, saying why; with one it is written down as to refund.
        with page.expect_navigation():
            page.click(f"#item-{lost2} form[action$='/refund'] button")
        assert "a refund needs a reason" in page.inner_text("#error")
        steps.shot(page, "refund without a reason refused")
        page.fill(f"#item-{lost2} input[name=reason]", "sent to us by mistake")
        with page.expect_navigation():
            page.click(f"#item-{lost2} form[action$='/refund'] button")
        assert "to be refunded" in page.inner_text("#done")
        assert "to refund" in page.inner_text("#refunds") and "sent to us by mistake" in page.inner_text("#refunds")
        steps.shot(page, "refund decided")
        page.fill("#refunds input[name=reference]", "BANK-123")
        with page.expect_navigation():
            page.click("#refunds button")
        assert "refunded by fred" in page.inner_text("#refunds") and "BANK-123" in page.inner_text("#refunds")
        trail = page.inner_text("#trail")
        for action in ("assign", "release", "refund", "refunded"):
            assert f"fred\t{action}" in trail, action
        steps.shot(page, "refund done and the trail")
        assert page.locator("#unmatched tbody tr").inner_text() == "Nothing unmatched."
        assert browsing.outside == []
    assert [p.name for p in steps.taken][0].startswith("01-")
