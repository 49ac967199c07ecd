"""What a customer owns is not repossessed, and a unit that comes back is re-keyed at the depot before it
is sold again (issue 21): a unit that received DISABLE_PAYG under its old key would otherwise stay unlocked
for its next customer, and its old customer's tokens would go on working."""

from __future__ import annotations

import json

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpaygo import TokenType, decode_token

from backoffice import clock, crypto
from backoffice.config import Settings
from backoffice.contracts import service as contracts
from backoffice.credit import service as credit
from backoffice.inventory import service
from backoffice.payments import service as payments
from backoffice.payments.providers import PaymentEvent
from backoffice.registry.schemas import NewContract
from backoffice.registry.service import register_unit
from backoffice.tickets import service as tickets
from backoffice.tickets.schemas import Closing
from paygo.web import create_app
from tests.support.contracts import kisumu_customer
from tests.support.field import agent
from tests.support.money import make_products
from tests.support.staff import TEST_ACTOR, api_token

NOW = "2027-03-01T09:00:00+03:00"
PRICE = 2_000_000  # the home system's deposit and 12 instalments, in minor units


class Keypad:
    """The unit's side: the official OpenPAYGO decoder with the key it was provisioned with."""

    def __init__(self, key: str, starting_code: int, count: int = 1) -> None:
        self.key, self.starting_code, self.count, self.used = key, starting_code, count, [count]
        self.unlocked = False
        self.days = 0.0

    def enter(self, token: str) -> bool:
        value, kind, count, used = decode_token(token=token, secret_key=self.key, count=self.count,
                                                used_counts=self.used, starting_code=self.starting_code)  # fmt: skip
        if kind == TokenType.DISABLE_PAYG:
            self.unlocked = True
        elif kind in (TokenType.ADD_TIME, TokenType.SET_TIME) and value is not None:
            self.unlocked, self.days = False, (self.days if kind == TokenType.ADD_TIME else 0) + value
        else:
            return False
        self.count, self.used = max(self.count, count), used
        return True


def _keypad(conn: psycopg.Connection, settings: Settings, unit_id: int) -> Keypad:
    key_enc, code, count = conn.execute(
        "select openpaygo_key_enc, starting_code, token_count from units where id = %s", (unit_id,)
    ).fetchone()  # type: ignore[misc]
    return Keypad(crypto.decrypt(settings.secret_key, key_enc), int(code), int(count))


def _tokens(conn: psycopg.Connection, contract_id: int) -> list[str]:
    return [t.token for t in credit.repository.tokens_of_contract(conn, contract_id)]


def _pay(conn: psycopg.Connection, settings: Settings, account: str, txn: str, amount: int,
         reverses: str | None = None) -> None:  # fmt: skip
    event = PaymentEvent("wing", txn, account, amount, "KES", clock.utc_now(), reverses=reverses)
    raw = json.dumps({"transaction_id": txn}).encode()
    outcome = payments.intake(conn, "wing", raw, event, payments.plain_answer, settings.secret_key)
    assert outcome.status == ("reversed" if reverses else "credited"), outcome


def _sold(conn: psycopg.Connection, settings: Settings, serial: str) -> tuple[int, int, str]:
    """A home system installed at a customer's under a contract signed today: (unit, contract, account)."""
    asset, _ = make_products(conn)
    buyer = kisumu_customer(conn, "Amina Odhiambo")
    unit = register_unit(conn, settings.secret_key, serial, asset, installed_at=clock.utc_now())
    contract = contracts.sign_contract(conn, NewContract(buyer, unit, asset, clock.today()))
    account = str(conn.execute("select account_number from contracts where id = %s", (contract,)).fetchone()[0])  # type: ignore[index]
    return unit, contract, account


@pytest.mark.clock(NOW)
def test_a_paid_off_unit_is_the_customers_and_is_not_repossessed(settings: Settings, conn: psycopg.Connection) -> None:
    anna = agent(conn, settings.database_url, "anna", "A1")
    unit, contract, account = _sold(conn, settings, "SHS10001")
    _pay(conn, settings, account, "ALL", PRICE)
    assert conn.execute("select state from contracts where id = %s", (contract,)).fetchone() == ("paid_off",)
    with pytest.raises(service.MoveRefused, match=f"paid off.*{account}.*belongs to the customer"):
        service.move_unit(conn, TEST_ACTOR, unit, "repossess", agent_id=anna.id)
    # Nor by closing a repossession ticket as done: the same move, the same reason.
    ticket = tickets.open_ticket(conn, TEST_ACTOR, unit, "repossession", "call_centre", "unpaid?", agent_id=anna.id)
    with pytest.raises(service.MoveRefused, match="belongs to the customer"):
        tickets.close(conn, TEST_ACTOR, ticket, Closing(outcome="done"), None)
    assert service.repository.current(conn, unit)[1] == "installed"  # type: ignore[index]
    assert conn.execute("select state from contracts where id = %s", (contract,)).fetchone() == ("paid_off",)


@pytest.mark.clock(NOW)
def test_a_unit_back_in_stock_is_re_keyed_before_it_is_sold_again(settings: Settings, conn: psycopg.Connection) -> None:
    """The first customer's unit got DISABLE_PAYG; a reversal took the contract below its price and the
    unit was repossessed before it took the SET_TIME that locks it again. Back in stock, it cannot be sold
    under that key; re-keyed at the depot, the next customer's tokens work on it under the new key only."""
    anna = agent(conn, settings.database_url, "anna", "A1")
    unit, first, account = _sold(conn, settings, "SHS10002")
    old = _keypad(conn, settings, unit)
    _pay(conn, settings, account, "ALL", PRICE)
    assert [old.enter(t) for t in _tokens(conn, first)] == [True] and old.unlocked  # DISABLE_PAYG
    _pay(conn, settings, account, "REV-ALL", PRICE, reverses="ALL")  # its SET_TIME never reaches the unit
    contracts.end_contract(conn, account, "repossessed", TEST_ACTOR, "reversed payment, unit taken back")
    for action, where in (("repossess", {"agent_id": anna.id}), ("return_to_warehouse", {}), ("refurbished", {})):
        service.move_unit(conn, TEST_ACTOR, unit, action, **where)  # type: ignore[arg-type]

    asset = conn.execute("select product_id from units where id = %s", (unit,)).fetchone()[0]  # type: ignore[index]
    second_buyer = kisumu_customer(conn, "Baraka Otieno", phone="+254700000002")
    with pytest.raises(contracts.ContractRefused, match="SHS10002 was sold under its current OpenPAYGO key"):
        contracts.sign_contract(conn, NewContract(second_buyer, unit, asset, clock.today()))

    counted = conn.execute("select max(count) from tokens where unit_id = %s", (unit,)).fetchone()[0]  # type: ignore[index]
    sheet = service.rekey_unit(conn, TEST_ACTOR, unit, settings.secret_key, "depot bench 2")
    # The count runs on (a count stays unique among the unit's tokens); the new key makes old tokens void.
    assert (sheet.serial, sheet.generation, sheet.token_count) == ("SHS10002", 1, counted)
    assert sheet.secret_key != old.key and len(sheet.secret_key) == 32
    provisioned = Keypad(sheet.secret_key, sheet.starting_code, sheet.token_count)  # written by the technician
    second = contracts.sign_contract(conn, NewContract(second_buyer, unit, asset, clock.today()),
                                     deposit_paid_on=clock.today(), secret_key=settings.secret_key)  # fmt: skip
    (deposit_token,) = _tokens(conn, second)
    assert provisioned.enter(deposit_token) and provisioned.days == 30 and not provisioned.unlocked
    assert not old.enter(deposit_token)  # the old key means nothing to the re-keyed unit's tokens
    keyings = conn.execute("select generation, actor, note from unit_keyings where unit_id = %s", (unit,)).fetchall()
    assert keyings == [(1, TEST_ACTOR.name, "depot bench 2")]
    audit = conn.execute("select after::text from audit_log where action = 'unit-rekeyed'").fetchone()
    assert audit is not None and sheet.secret_key not in audit[0]  # the trail never holds the secret

    # One key, one contract: a unit sold is not re-keyed under its customer, and a key is never sold twice.
    account2 = conn.execute("select account_number from contracts where id = %s", (second,)).fetchone()[0]  # type: ignore[index]
    with pytest.raises(service.MoveRefused, match=f"contract {account2} is active"):
        service.rekey_unit(conn, TEST_ACTOR, unit, settings.secret_key, None)
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("update contracts set key_generation = 1 where id = %s", (first,))


@pytest.mark.clock(NOW)
def test_the_rekey_door_is_for_administrators(settings: Settings, conn: psycopg.Connection) -> None:
    make_products(conn)
    asset = int(conn.execute("select id from products where code = 'SHS-A'").fetchone()[0])  # type: ignore[index]
    unit = register_unit(conn, settings.secret_key, "SHS10003", asset)  # in stock
    conn.commit()
    with TestClient(create_app(settings)) as app:
        path = "/api/v1/inventory/units/SHS10003/rekey"
        assert app.post(path, json={}).status_code == 401
        for role in ("call_centre", "finance", "field_agent", "viewer"):
            assert app.post(path, json={}, headers=api_token(settings.database_url, role)).status_code == 403, role
        admin = api_token(settings.database_url, "admin")
        assert app.post("/api/v1/inventory/units/NOPE/rekey", json={}, headers=admin).status_code == 404
        sheet = app.post(path, json={"note": "bench 1"}, headers=admin)
        assert sheet.status_code == 200, sheet.text
        body = sheet.json()
        assert body["generation"] == 1 and body["token_count"] == 1 and len(body["secret_key"]) == 32
        assert app.post(path, json={"note": "x" * 501}, headers=admin).status_code == 422
    key_enc = conn.execute("select openpaygo_key_enc from units where id = %s", (unit,)).fetchone()[0]  # type: ignore[index]
    assert crypto.decrypt(settings.secret_key, key_enc) == body["secret_key"]
