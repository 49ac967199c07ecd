"""MTN MoMo: a pending payment settled by polling MTN's API or by a late callback."""

from __future__ import annotations

from datetime import timedelta

import httpx
import psycopg

from backoffice.config import Settings
from backoffice.registry import repository as registry
from tests.support import count, serve
from tests.support.money import make_accounts


def test_momo_pending_then_settled_by_poll_or_late_callback(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    """MTN's API cannot be reached from here: a small stand-in serves its token and status endpoints."""
    from fastapi import FastAPI, Header, HTTPException

    from backoffice.payments.momo import MomoClient, poll_pending

    registry.insert_product(conn, code="UG-LAMP", name="Lamp UG", business_model="flexible", currency="UGX",
                            hardware_cost=100_000, price_per_day=1_000, deposit_amount=0, deposit_days=0)  # fmt: skip
    product = conn.execute("select id from products where code = 'UG-LAMP'").fetchone()[0]  # type: ignore[index]
    acct = make_accounts(conn, money_settings, product, 1, "UG")[0]

    mtn = FastAPI()
    answers: dict[str, dict[str, object]] = {}

    @mtn.post("/collection/token/")
    def token(ocp_apim_subscription_key: str = Header()) -> dict[str, str]:
        return {"access_token": "t-" + ocp_apim_subscription_key, "token_type": "access_token"}

    @mtn.get("/collection/v1_0/requesttopay/{ref}")
    def status(ref: str, authorization: str = Header()) -> dict[str, object]:
        if authorization != "Bearer t-sub-key" or ref not in answers:
            raise HTTPException(404)
        return answers[ref]

    with serve(mtn, "the stand-in MoMo API") as mtn_url:
        settings = money_settings.model_copy(update={"momo_base_url": mtn_url, "momo_subscription_key": "sub-key"})
        body = {"amount": "5000", "currency": "UGX", "externalId": acct.number, "status": "PENDING",
                "payer": {"partyIdType": "MSISDN", "partyId": "256700000001"}}  # fmt: skip
        for ref in ("REF-A", "REF-B"):
            reply = httpx.post(f"{server}/payments/momo/callback/{ref}", json=body)
            assert reply.json()["status"] == "pending"
        assert count(conn, "select count(*) from tokens") == 0
        # REF-A: the poll finds it succeeded. REF-B: a late callback settles it.
        answers["REF-A"] = body | {"status": "SUCCESSFUL", "financialTransactionId": "777"}
        conn.commit()
        conn.autocommit = True
        report = poll_pending(conn, MomoClient(settings), settings, older_than=timedelta(0))
        assert (report.asked, report.settled, report.still_pending) == (2, 1, 0) and report.errors == 1  # B: 404
        late = httpx.post(f"{server}/payments/momo/callback/REF-B", json=body | {"status": "SUCCESSFUL"})
        assert late.json()["status"] == "credited"
        again = httpx.post(f"{server}/payments/momo/callback/REF-B", json=body | {"status": "SUCCESSFUL"})
        assert again.headers.get("x-duplicate") == "true"
        days = [d for (d,) in conn.execute("select value_days from tokens order by count").fetchall()]
        assert days == [5, 5]
