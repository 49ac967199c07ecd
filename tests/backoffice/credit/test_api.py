"""The call centre's token endpoints: a contract's tokens listed and one sent again."""

from __future__ import annotations

import httpx
import psycopg

from backoffice.config import Settings
from backoffice.delivery.dispatcher import DevSmsGateway, dispatch_once
from tests.support.money import confirmation, make_accounts, make_products


def test_call_centre_resends_a_token_and_lists_a_contracts_tokens(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "RSN")[0]
    httpx.post(f"{server}/payments/mpesa/c2b/confirmation", json=confirmation(acct.number, "605"))
    tokens = httpx.get(f"{server}/api/contracts/{acct.number}/tokens").json()
    assert [(t["token_type"], t["value_days"]) for t in tokens] == [("add_time", 10)]
    conn.autocommit = True
    with conn.transaction():
        dispatch_once(conn, DevSmsGateway(), lambda serial, payload: None)
    resent = httpx.post(f"{server}/api/tokens/{tokens[0]['id']}/resend")
    assert resent.status_code == 200 and resent.json()["deliveries_queued"] == 2
    with conn.transaction():
        assert dispatch_once(conn, DevSmsGateway(), lambda serial, payload: None) == 2
    sms = httpx.get(f"{server}/api/sms", params={"to": acct.phone}).json()
    assert len(sms) == 2 and sms[0]["body"] == sms[1]["body"] and tokens[0]["token"][:3] in sms[0]["body"]
    assert httpx.post(f"{server}/api/tokens/999999/resend").status_code == 404
    assert httpx.get(f"{server}/api/contracts/00000000/tokens").status_code == 404
