"""Money paid to an ended contract (repossessed, written off, returned) buys nothing: it is not credited
(no ledger row, no commission, no token) but waits for finance as an ``ended-contract`` item, to be
assigned to the right contract or refunded (issue 21)."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from backoffice import clock
from backoffice.agents import repository as agents
from backoffice.agents import service as agent_service
from backoffice.config import Settings
from backoffice.contracts import service as contracts
from tests.support import count
from tests.support.field import agent
from tests.support.money import make_accounts, make_products, webhook
from tests.support.staff import TEST_ACTOR, api_token, login, user

V1 = "/api/v1/payments"


def _paid(server: str, account: str, txn: str, amount: str = "350") -> dict[str, Any]:
    body = {"transaction_id": txn, "amount": amount, "account": account, "currency": "KES",
            "paid_at": clock.utc_now().isoformat()}  # fmt: skip
    reply = webhook(server, body)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _earned(conn: psycopg.Connection, agent_id: int) -> int:
    return sum(c.earned for c in agents.commissions(conn, agent_id))


def test_money_paid_to_an_ended_contract_waits_for_finance(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    accts = make_accounts(conn, money_settings, flexible, 4, "END")
    anna = agent(conn, money_settings.database_url, "anna", "A1")
    for a in accts:
        agent_service.record_sale(conn, TEST_ACTOR, anna.id, a.number)
    conn.commit()
    for a in accts[:3]:  # each pays its deposit while the contract runs
        assert _paid(server, a.number, f"DEP-{a.serial}", "500")["status"] == "credited"
    endings = dict(zip(("repossessed", "written_off", "returned"), accts[:3], strict=True))
    for state, a in endings.items():
        contracts.end_contract(conn, a.number, state, TEST_ACTOR, "ended for the test")
    conn.commit()
    earned = _earned(conn, anna.id)
    ledger = count(conn, "select count(*) from ledger_entries where status = 'completed'")
    tokens = count(conn, "select count(*) from tokens")

    for state, a in endings.items():
        answer = _paid(server, a.number, f"LATE-{a.serial}")
        assert answer["status"] == "held" and state.replace("_", " ") in answer["reason"], answer
    # Nothing credited: no ledger row, no paid total, no token, no commission.
    assert count(conn, "select count(*) from ledger_entries where status = 'completed'") == ledger
    assert count(conn, "select count(*) from tokens") == tokens
    assert count(conn, "select count(*) from contracts where paid_total <> 50000 and id = any(%s)",
                 [a.contract_id for a in accts[:3]]) == 0  # fmt: skip
    assert _earned(conn, anna.id) == earned
    assert count(conn, "select count(*) from payment_inbox where status = 'held' and contract_id is null") == 3

    fin = api_token(money_settings.database_url, "finance", name="fiona")
    waiting = httpx.get(f"{server}{V1}/ended-contract", headers=fin)
    assert waiting.status_code == 200, waiting.text
    items = {w["provider_txn_id"]: w for w in waiting.json()}
    assert set(items) == {f"LATE-{a.serial}" for a in accts[:3]}
    assert {w["kind"] for w in items.values()} == {"ended-contract"}
    assert httpx.get(f"{server}{V1}/held", headers=fin).json() == []  # not among the rules' held payments
    item = items[f"LATE-{accts[0].serial}"]
    assert "repossessed" in item["reason"] and "buys nothing" in item["reason"]

    # Released to its own account it would buy nothing: refused. Assigned to the customer's running
    # contract, it is credited there; refunded, it goes back to the payer.
    released = httpx.post(f"{server}{V1}/waiting/{item['id']}/release", json={}, headers=fin)
    assert released.status_code == 409 and "ended" in released.text, released.text
    assigned = httpx.post(f"{server}{V1}/waiting/{item['id']}/assign", json={"account": accts[3].number}, headers=fin)
    assert assigned.status_code == 200, assigned.text
    assert count(conn, "select paid_total from contracts where id = %s", accts[3].contract_id) == 35_000
    refund = items[f"LATE-{accts[1].serial}"]
    refunded = httpx.post(f"{server}{V1}/waiting/{refund['id']}/refund", json={"reason": "written off"}, headers=fin)
    assert refunded.status_code == 200, refunded.text

    # The work page lists what still waits under its own heading.
    user(money_settings.database_url, "fred", "finance")
    with httpx.Client(base_url=server) as browser:
        assert login(browser, "fred").status_code == 303
        page = browser.get("/payments/waiting").text
    assert 'id="ended"' in page and f"LATE-{accts[2].serial}" in page and f"LATE-{accts[0].serial}" not in page

    # The outsider and the call centre do not see the list.
    assert httpx.get(f"{server}{V1}/ended-contract").status_code == 401
    desk = api_token(money_settings.database_url, "call_centre")
    assert httpx.get(f"{server}{V1}/ended-contract", headers=desk).status_code == 403
