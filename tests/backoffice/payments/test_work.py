"""Finance's decisions over /api/v1/payments: assign, release and refund each once (a second attempt,
or a concurrent one on another connection, is refused and changes nothing), every decision in the
audit trail under the member of staff who took it, refunds need a reason and are only written down,
and outsiders (no login, the call centre) are refused."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import psycopg
import pytest

from backoffice import clock
from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.payments import repository, service
from tests.support import count
from tests.support.money import MONEY_NOW, Account, confirmation, make_accounts, make_products, webhook
from tests.support.staff import api_token, csrf_of, login, user

pytestmark = pytest.mark.clock(MONEY_NOW)

V1 = "/api/v1/payments"


def _typo(acct: Account) -> str:
    """The account number with its last digit changed: fails the check digit, so matches nothing."""
    return acct.number[:-1] + str((int(acct.number[-1]) + 3) % 10)


def _waiting(server: str, headers: dict[str, str], kind: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{server}{V1}/{kind}", headers=headers)
    assert reply.status_code == 200, reply.text
    return list(reply.json())


@pytest.fixture
def accounts(money_settings: Settings, conn: psycopg.Connection) -> list[Account]:
    _, flexible = make_products(conn)
    return make_accounts(conn, money_settings, flexible, 2, "WRK")


def test_assign_release_and_refund_each_once_audited_under_the_actor(
    money_settings: Settings, conn: psycopg.Connection, server: str, accounts: list[Account]
) -> None:
    acct, other = accounts
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(_typo(acct), "570", txn="LOST1"))
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(_typo(acct), "35", txn="LOST2"))
    # Above the KES ceiling (250,000): held for finance, never credited by itself.
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(other.number, "300000", txn="BIG1"))
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(other.number, "260000", txn="BIG2"))
    fin = api_token(money_settings.database_url, "finance", name="fiona")

    unmatched = _waiting(server, fin, "unmatched")
    held = _waiting(server, fin, "held")
    assert [u["provider_txn_id"] for u in unmatched] == ["LOST1", "LOST2"]
    assert [(h["provider_txn_id"], h["kind"]) for h in held] == [("BIG1", "held"), ("BIG2", "held")]
    assert "above the ceiling" in held[0]["reason"] and held[0]["amount_text"] == "300,000.00 KES"

    # The contract is found by its customer's name, then the money assigned to it.
    hits = httpx.get(f"{server}{V1}/contracts", params={"q": "customer wrk0"}, headers=fin).json()
    assert hits[0]["account_number"] == acct.number  # the best match first (the search is fuzzy)
    paid_before = hits[0]["paid_total"]
    assign = f"{server}{V1}/waiting/{unmatched[0]['id']}/assign"
    first = httpx.post(assign, json={"account": acct.number, "note": "typo in the account"}, headers=fin)
    assert first.status_code == 200, first.text
    done = first.json()
    # 500 KES of deposit (7 days) and 70 KES at 35 a day (2 days).
    assert done["state"] == "assigned" and done["account"] == acct.number and done["days_added"] == 9
    assert done["paid_total"] == paid_before + 57_000 and len(done["tokens"]) == 1
    again = httpx.post(assign, json={"account": acct.number}, headers=fin)
    assert again.status_code == 409 and "already assigned" in again.json()["detail"]
    assert count(conn, "select paid_total from contracts where id = %s", acct.contract_id) == paid_before + 57_000
    assert count(conn, "select count(*) from tokens where contract_id = %s and inbox_id is not null",
                 acct.contract_id) == 1  # fmt: skip

    # Released: credited to the account it was paid to, as if received. A second release is refused.
    release = f"{server}{V1}/waiting/{held[0]['id']}/release"
    released = httpx.post(release, json={"note": "confirmed with Safaricom: a school's fees"}, headers=fin)
    assert released.status_code == 200 and released.json()["state"] == "released"
    assert released.json()["account"] == other.number
    assert httpx.post(release, json={}, headers=fin).status_code == 409
    assert conn.execute("select status from payment_inbox where provider_txn_id = 'BIG1'").fetchone() == ("credited",)
    # Unmatched money cannot be "released" (it has no account): it is assigned.
    refused = httpx.post(f"{server}{V1}/waiting/{unmatched[1]['id']}/release", json={}, headers=fin)
    assert refused.status_code == 409 and "assign it" in refused.json()["detail"]

    # A refund needs a reason; it is written down as to refund, once; the money never gets credited.
    refund = f"{server}{V1}/waiting/{held[1]['id']}/refund"
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        assert httpx.post(refund, json=body, headers=fin).status_code == 422, body
    refunded = httpx.post(refund, json={"reason": "paid twice by mistake"}, headers=fin)
    assert refunded.status_code == 200 and refunded.json()["state"] == "refunded"
    refund_id = refunded.json()["refund_id"]
    assert httpx.post(refund, json={"reason": "again"}, headers=fin).status_code == 409
    assert httpx.post(f"{server}{V1}/waiting/{held[1]['id']}/assign", json={"account": other.number},
                      headers=fin).status_code == 409  # fmt: skip
    todo = httpx.get(f"{server}{V1}/refunds", params={"state": "to_refund"}, headers=fin).json()
    assert [(r["id"], r["state"], r["reason"], r["amount"]) for r in todo] == [
        (refund_id, "to_refund", "paid twice by mistake", 26_000_000)]  # fmt: skip
    done_url = f"{server}{V1}/refunds/{refund_id}/done"
    marked = httpx.post(done_url, json={"reference": "MPESA-B2C-XYZ"}, headers=fin)
    assert marked.status_code == 200 and marked.json()["state"] == "refunded"
    assert marked.json()["refunded_by"] == "token:fiona"
    assert httpx.post(done_url, json={}, headers=fin).status_code == 409
    assert httpx.post(f"{server}{V1}/refunds/999999/done", json={}, headers=fin).status_code == 404
    assert conn.execute("select status from payment_inbox where provider_txn_id = 'BIG2'").fetchone() == ("refunded",)

    # Every decision is in the trail under fiona, with the why; the item's own trail starts with the hold.
    trail = conn.execute(
        "select actor, action, after->>'note' from audit_log where entity = 'payment' and actor <> 'system' order by id"
    ).fetchall()
    assert trail == [("token:fiona", "assign", "typo in the account"),
                     ("token:fiona", "release", "confirmed with Safaricom: a school's fees"),
                     ("token:fiona", "refund", "paid twice by mistake"),
                     ("token:fiona", "refunded", None)]  # fmt: skip
    item_trail = httpx.get(f"{server}{V1}/waiting/{held[1]['id']}/trail", headers=fin).json()
    assert [(a["actor"], a["action"]) for a in item_trail] == [
        ("token:fiona", "refunded"), ("token:fiona", "refund"), ("system", "held")]  # fmt: skip
    assert [a["action"] for a in httpx.get(f"{server}{V1}/decisions", headers=fin).json()][:2] == [
        "refunded", "refund"]  # fmt: skip
    assert httpx.get(f"{server}{V1}/waiting/999999/trail", headers=fin).status_code == 404
    assert [u["provider_txn_id"] for u in _waiting(server, fin, "unmatched")] == ["LOST2"]
    assert _waiting(server, fin, "held") == []


def test_outsiders_are_refused_and_change_nothing(
    money_settings: Settings, conn: psycopg.Connection, server: str, accounts: list[Account]
) -> None:
    acct = accounts[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(_typo(acct), "70", txn="LOST1"))
    item = count(conn, "select id from unmatched_payments")
    conn.commit()
    call_centre = api_token(money_settings.database_url, "call_centre")
    for headers, status in (({}, 401), ({"Authorization": "Bearer pgt_forged"}, 401), (call_centre, 403)):
        for kind in ("unmatched", "held", "refunds", "decisions"):
            assert httpx.get(f"{server}{V1}/{kind}", headers=headers).status_code == status
        for action, body in (("assign", {"account": acct.number}), ("release", {}), ("refund", {"reason": "x"})):
            reply = httpx.post(f"{server}{V1}/waiting/{item}/{action}", json=body, headers=headers)
            assert reply.status_code == status, (action, headers, reply.status_code)
    assert conn.execute("select state from unmatched_payments").fetchall() == [("open",)]
    assert count(conn, "select count(*) from refunds") == 0
    assert count(conn, "select count(*) from audit_log where action in ('assign', 'release', 'refund')") == 0


def test_a_concurrent_double_assign_credits_once(
    money_settings: Settings, conn: psycopg.Connection, server: str, accounts: list[Account]
) -> None:
    """Two finance clerks (two connections) assign the same payment at the same moment: one wins, the
    other is refused, and the contract is credited once."""
    acct = accounts[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(_typo(acct), "350", txn="LOST9"))
    item = count(conn, "select id from unmatched_payments")
    paid = count(conn, "select paid_total from contracts where id = %s", acct.contract_id)
    conn.commit()
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def clerk(name: str) -> None:
        with psycopg.connect(money_settings.database_url) as own:
            start.wait()
            try:
                with own.transaction():
                    service.assign_unmatched(own, item, acct.number, Actor(name), money_settings.secret_key)
                outcomes.append("assigned")
            except service.ResolutionError as err:
                outcomes.append(str(err))

    clerks = [threading.Thread(target=clerk, args=(n,)) for n in ("ann", "ben")]
    for t in clerks:
        t.start()
    for t in clerks:
        t.join(timeout=60)
    assert sorted(outcomes) == ["assigned", f"payment {item} is already assigned"]
    assert count(conn, "select paid_total from contracts where id = %s", acct.contract_id) == paid + 35_000
    assert count(conn, "select count(*) from audit_log where action = 'assign'") == 1


def test_the_database_itself_refuses_a_second_decision(
    money_settings: Settings, conn: psycopg.Connection, server: str, accounts: list[Account]
) -> None:
    """Whatever the code above it checked, an item leaves 'open' once only, and has one refund at most."""
    acct = accounts[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(_typo(acct), "70", txn="LOST1"))
    item = count(conn, "select id from unmatched_payments")
    inbox = count(conn, "select inbox_id from unmatched_payments")
    assert repository.resolve_unmatched(conn, item, "refunded", "ann", None, "first") is True
    assert repository.resolve_unmatched(conn, item, "assigned", "ben", acct.contract_id, "second") is False
    repository.insert_refund(conn, item, inbox, "first", "ann")
    with pytest.raises(psycopg.errors.UniqueViolation):
        repository.insert_refund(conn, item, inbox, "second", "ben")
    conn.rollback()
    with pytest.raises(psycopg.errors.CheckViolation):  # and never without a reason
        repository.insert_refund(conn, item, inbox, "  ", "ann")


def test_the_work_pages_buttons_need_the_sessions_csrf_token_and_finance(
    money_settings: Settings, conn: psycopg.Connection, server: str, accounts: list[Account]
) -> None:
    acct = accounts[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(_typo(acct), "70", txn="LOST1"))
    item = count(conn, "select id from unmatched_payments")
    conn.commit()
    user(money_settings.database_url, "fred", "finance")
    user(money_settings.database_url, "cara", "call_centre")
    refund = f"/payments/waiting/{item}/refund"
    with httpx.Client(base_url=server) as web:
        login(web, "cara")  # the call centre sees /payments, not finance's work page
        assert web.get("/payments/waiting").status_code == 403
        csrf = csrf_of(web.get("/payments").text)
        assert web.post(refund, data={"csrf_token": csrf, "reason": "x"}).status_code == 403
    with httpx.Client(base_url=server) as web:
        login(web, "fred")
        page = web.get("/payments/waiting")
        assert page.status_code == 200 and "LOST1" in page.text
        assert web.post(refund, data={"reason": "sent by mistake"}).status_code == 403  # no token
        assert web.post(refund, data={"reason": "sent by mistake", "csrf_token": "forged"}).status_code == 403
        csrf = csrf_of(page.text)
        no_reason = web.post(refund, data={"csrf_token": csrf, "reason": " "})
        assert no_reason.status_code == 409 and "a refund needs a reason" in no_reason.text
        done = web.post(refund, data={"csrf_token": csrf, "reason": "sent by mistake"})
        assert done.status_code == 303 and done.headers["location"].startswith("/payments/waiting?done=")
        twice = web.post(refund, data={"csrf_token": csrf, "reason": "sent by mistake"})  # a double click
        assert twice.status_code == 409 and "already refunded" in twice.text
    assert count(conn, "select count(*) from refunds") == 1
    trail = conn.execute("select actor, action from audit_log where action = 'refund'").fetchall()
    assert trail == [("fred", "refund")]


def test_a_payment_dated_in_the_far_future_is_credited_from_today_and_never_to_an_ended_contract(
    money_settings: Settings, conn: psycopg.Connection, server: str, accounts: list[Account]
) -> None:
    acct, other = accounts
    future = {**confirmation(acct.number, "350", txn="FUTURE1"), "TransTime": "99991231235959"}
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=future)
    ended = {**confirmation(other.number, "350", txn="FUTURE2"), "TransTime": "30000101000000"}
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=ended)
    fin = api_token(money_settings.database_url, "finance", name="fiona")
    held = {h["provider_txn_id"]: h for h in _waiting(server, fin, "held")}
    assert set(held) == {"FUTURE1", "FUTURE2"}  # outside the time window: held, not credited
    released = httpx.post(f"{server}{V1}/waiting/{held['FUTURE1']['id']}/release", json={}, headers=fin)
    assert released.status_code == 200, released.text
    latest = conn.execute(
        "select max(l.entry_date) from ledger_entries l join contracts c on c.id = l.contract_id "
        "where c.account_number = %s and l.status = 'completed'",
        (acct.number,),
    ).fetchone()
    assert latest is not None and latest[0] is not None and latest[0].year < 3000
    conn.execute("update contracts set state = 'written_off' where account_number = %s", (other.number,))
    conn.commit()
    refused = httpx.post(f"{server}{V1}/waiting/{held['FUTURE2']['id']}/release", json={}, headers=fin)
    assert refused.status_code == 409 and "written_off" in refused.text and "refund" in refused.text


def test_the_providers_reversal_settles_a_refund_still_to_do_and_flags_one_paid_out_by_hand(
    money_settings: Settings, conn: psycopg.Connection, server: str, accounts: list[Account]
) -> None:
    acct, _ = accounts
    now = clock.utc_now().isoformat()
    fin = api_token(money_settings.database_url, "finance", name="fiona")
    for txn in ("W5", "W6"):
        lost = {"transaction_id": txn, "amount": "70", "account": _typo(acct), "currency": "KES", "paid_at": now}
        assert webhook(server, lost).json()["status"] == "unmatched"
    items = {u["provider_txn_id"]: u["id"] for u in _waiting(server, fin, "unmatched")}
    for txn in ("W5", "W6"):
        decided = httpx.post(f"{server}{V1}/waiting/{items[txn]}/refund", json={"reason": "no account"}, headers=fin)
        assert decided.status_code == 200, decided.text
    refund_of = dict(
        conn.execute(
            "select p.provider_txn_id, r.id from refunds r join payment_inbox p on p.id = r.inbox_id"
        ).fetchall()
    )
    done = httpx.post(f"{server}{V1}/refunds/{refund_of['W6']}/done", json={"reference": "BANK-1"}, headers=fin)
    assert done.status_code == 200, done.text
    for txn in ("W5", "W6"):  # the provider sends both back itself as well
        back = {"transaction_id": f"{txn}-REV", "reverses": txn, "amount": "70", "account": _typo(acct),
                "currency": "KES", "paid_at": now}  # fmt: skip
        assert webhook(server, back).json()["status"] == "reversed"
    refunds = dict(conn.execute(
        "select p.provider_txn_id, (r.state, r.refunded_by, r.reference) from refunds r "
        "join payment_inbox p on p.id = r.inbox_id").fetchall())  # fmt: skip
    assert refunds["W5"] == ("refunded", "provider reversal", "wing/W5-REV")  # nothing left to pay out
    assert refunds["W6"] == ("refunded", "token:fiona", "BANK-1")
    flagged = conn.execute(
        "select provider_txn_id from payment_inbox where reason like '%%paid back twice%%'"
    ).fetchall()
    assert flagged == [("W6-REV",)]  # the payer has it twice: finance must recover one
