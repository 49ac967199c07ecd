"""A stand-in for MTN MoMo's Collections API (the real one cannot be reached from here): its token,
request-to-pay and status endpoints, with the customer's approval played by the test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Header, HTTPException, Request

from backoffice.config import Settings
from tests.support.processes import serve


@dataclass
class Wallets:
    """What the stand-in was asked, and the results it reports."""

    url: str = ""
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)  # reference -> body and callback URL
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # reference -> what the status API says

    def approve(self, reference: str, status: str = "SUCCESSFUL", callback: bool = True) -> httpx.Response | None:
        """The customer approves (or declines) on their phone: MTN's status changes, and it calls back."""
        asked = self.requests[reference]
        self.results[reference] = asked["body"] | {"status": status, "financialTransactionId": f"FT-{reference[:8]}"}
        return httpx.post(asked["callback"], json=self.results[reference]) if callback else None


@contextmanager
def momo_standin(settings: Settings) -> Iterator[tuple[Settings, Wallets]]:
    """The stand-in served over HTTP, and settings that point the platform at it."""
    mtn = FastAPI()
    wallets = Wallets()

    @mtn.post("/collection/token/")
    def token(ocp_apim_subscription_key: str = Header()) -> dict[str, str]:
        return {"access_token": "t-" + ocp_apim_subscription_key, "token_type": "access_token"}

    @mtn.post("/collection/v1_0/requesttopay", status_code=202)
    async def request_to_pay(
        request: Request, x_reference_id: str = Header(), x_callback_url: str = Header(), authorization: str = Header()
    ) -> None:
        if authorization != "Bearer t-sub-key":
            raise HTTPException(401)
        body = await request.json()
        wallets.requests[x_reference_id] = {"body": body, "callback": x_callback_url}
        wallets.results[x_reference_id] = body | {"status": "PENDING"}

    @mtn.get("/collection/v1_0/requesttopay/{ref}")
    def status(ref: str, authorization: str = Header()) -> dict[str, object]:
        if authorization != "Bearer t-sub-key" or ref not in wallets.results:
            raise HTTPException(404)
        return wallets.results[ref]

    with serve(mtn, "the stand-in MoMo API") as url:
        wallets.url = url
        yield settings.model_copy(update={"momo_base_url": url, "momo_subscription_key": "sub-key"}), wallets
