"""The call centre's token endpoints: a contract's tokens listed and one sent again."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from backoffice.config import Settings
from backoffice.delivery.dispatcher import DevSmsGateway, dispatch_once
from tests.support.money import MONEY_NOW, confirmation, make_accounts, make_products
from tests.support.staff import api_token

pytestmark = pytest.mark.clock(MONEY_NOW)


def test_call_centre_resends_a_token_and_lists_a_contracts_tokens(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "RSN")[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "605"))
    agent = api_token(money_settings.database_url, "call_centre")
    tokens = httpx.get(f"{server}/api/contracts/{acct.number}/tokens", headers=agent).json()
    assert [(t["token_type"], t["value_days"]) for t in tokens] == [("add_time", 10)]
    conn.autocommit = True
    with conn.transaction():
        dispatch_once(conn, DevSmsGateway(), lambda serial, payload: None)
    resent = httpx.post(f"{server}/api/tokens/{tokens[0]['id']}/resend", headers=agent)
    assert resent.status_code == 200 and resent.json()["deliveries_queued"] == 2
    trail = conn.execute("select actor, action, entity_id, after from audit_log where entity = 'token'").fetchall()
    assert trail == [("token:test-call_centre", "token-resent", str(tokens[0]["id"]), {"deliveries_queued": 2})]
    with conn.transaction():
        assert dispatch_once(conn, DevSmsGateway(), lambda serial, payload: None) == 2
    sms = httpx.get(f"{server}/api/sms", params={"to": acct.phone}, headers=agent).json()
    spaced = f"{tokens[0]['token'][:3]} {tokens[0]['token'][3:6]} {tokens[0]['token'][6:]}"
    # The resend has its own words (backoffice/templates/sms/en/token_resend.txt), the same token.
    assert len(sms) == 2 and all(spaced in m["body"] for m in sms)
    assert sms[0]["body"].startswith("Your solar token again") and sms[1]["body"].startswith("Payment of")
    assert httpx.post(f"{server}/api/tokens/999999/resend", headers=agent).status_code == 404
    assert httpx.get(f"{server}/api/contracts/00000000/tokens", headers=agent).status_code == 404
