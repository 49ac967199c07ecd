"""A mobile-money provider simulator: realistic M-Pesa C2B and MTN MoMo callbacks sent to the
platform over HTTP, with the faults real providers produce at configurable rates — the same
confirmation sent again, a mistyped account number, a confirmation that arrives late, a payment
reversed afterwards (through the signed webhook, as a reconciliation relay would).

Open loop: payments start at a fixed rate whatever the platform's answer time, so a slow platform
shows up as latency, not as a politely slower load. Used by ``paygo payments simulate``, the demo,
the tests and ``bench/payments_bench.py``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from backoffice import clock
from backoffice.payments.providers import EAT, sign


@dataclass
class Faults:
    duplicate: float = 0.0  # share of confirmations sent a second time
    typo: float = 0.0  # share with one digit of the account number changed
    late: float = 0.0  # share whose confirmation comes up to ``late_seconds`` after the validation
    reversal: float = 0.0  # share paid through the signed webhook and reversed by it afterwards
    # share sent as MTN MoMo callbacks; the platform refuses each (it never requested these payments):
    # a load on that door's defence, not money
    momo: float = 0.0
    late_seconds: float = 5.0


@dataclass
class Payer:
    account: str
    amount: str  # decimal text in the currency, e.g. "105.00"


@dataclass
class Result:
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, confirmation answered
    errors: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def count(self, kind: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _typo(account: str, rng: random.Random) -> str:
    i = rng.randrange(len(account))
    return account[:i] + str((int(account[i]) + rng.randrange(1, 10)) % 10) + account[i + 1 :]


def mpesa_body(account: str, amount: str, shortcode: str, txn: str, when: datetime) -> dict[str, str]:
    return {
        "TransactionType": "Pay Bill", "TransID": txn, "TransTime": when.astimezone(EAT).strftime("%Y%m%d%H%M%S"),
        "TransAmount": amount, "BusinessShortCode": shortcode, "BillRefNumber": account, "InvoiceNumber": "",
        "OrgAccountBalance": "", "ThirdPartyTransID": "", "MSISDN": "2547 ***** 126", "FirstName": "SIM",
        "MiddleName": "", "LastName": "",
    }  # fmt: skip


class Simulator:
    def __init__(
        self, base_url: str, payers: list[Payer], shortcode: str = "600638", faults: Faults | None = None,
        webhook_provider: str | None = None, webhook_secret: str | None = None, momo_currency: str = "UGX",
        seed: int = 1, timeout: float = 30.0,
    ) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.payers = payers
        self.shortcode = shortcode
        self.faults = faults or Faults()
        self.webhook_provider, self.webhook_secret = webhook_provider, webhook_secret
        self.momo_currency = momo_currency
        self.rng = random.Random(seed)
        self.timeout = timeout
        self.result = Result()
        self._pending: set[asyncio.Task[None]] = set()

    async def _post(self, client: httpx.AsyncClient, path: str, kind: str, timed: bool, **kw: object) -> None:
        start = time.perf_counter()
        try:
            reply = await client.post(self.base_url + path, **kw)  # type: ignore[arg-type]
            if reply.status_code >= 500:
                self.result.errors.append(f"{kind}: HTTP {reply.status_code}")
        except httpx.HTTPError as err:
            self.result.errors.append(f"{kind}: {err!r}")
            return
        if timed:
            self.result.latencies.append(time.perf_counter() - start)
        self.result.count(kind)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _one(self, client: httpx.AsyncClient, payer: Payer) -> None:
        f, rng = self.faults, self.rng
        account = payer.account
        if rng.random() < f.typo:
            account = _typo(payer.account, rng)
            self.result.count("typo")
        txn = uuid.uuid4().hex[:10].upper()
        if rng.random() < f.momo:
            momo: dict[str, object] = {
                "amount": payer.amount.split(".")[0], "currency": self.momo_currency,
                "financialTransactionId": txn, "externalId": account, "status": "SUCCESSFUL",
                "payer": {"partyIdType": "MSISDN", "partyId": "256700000000"},
            }  # fmt: skip
            await self._post(client, "/payments/momo/callback", "momo", True, json=momo,
                             headers={"X-Reference-Id": str(uuid.uuid4())})  # fmt: skip
            return
        if self.webhook_provider and self.webhook_secret and rng.random() < f.reversal:
            # Only the provider that made a payment can reverse it: these go through the webhook.
            self.result.count("reversed")
            paid: dict[str, object] = {"transaction_id": txn, "account": account, "amount": payer.amount,
                                       "currency": "KES", "paid_at": clock.utc_now().isoformat()}  # fmt: skip
            await self._webhook(client, "webhook", True, paid)
            self._spawn(self._reverse(client, account, payer.amount, txn))
            return
        body = mpesa_body(account, payer.amount, self.shortcode, txn, clock.utc_now())
        await self._post(client, "/payments/mpesa/c2b/validation", "validation", False, json=body)
        if rng.random() < f.late:
            await asyncio.sleep(rng.uniform(0, f.late_seconds))
            self.result.count("late")
        await self._post(client, "/payments/mpesa/c2b/confirmation", "confirmation", True, json=body)
        if rng.random() < f.duplicate:
            self._spawn(self._post(client, "/payments/mpesa/c2b/confirmation", "duplicate", False, json=body))

    async def _reverse(self, client: httpx.AsyncClient, account: str, amount: str, txn: str) -> None:
        assert self.webhook_provider and self.webhook_secret
        await asyncio.sleep(self.rng.uniform(0.1, 1.0))
        await self._webhook(client, "reversal", False, {"transaction_id": f"REV-{txn}", "reverses": txn,
                            "account": account, "amount": amount, "currency": "KES",
                            "paid_at": clock.utc_now().isoformat()})  # fmt: skip

    async def _webhook(self, client: httpx.AsyncClient, kind: str, timed: bool, event: dict[str, object]) -> None:
        """A payment event on the provider's signed webhook."""
        assert self.webhook_provider and self.webhook_secret
        raw = json.dumps(event).encode()
        await self._post(client, f"/payments/webhook/{self.webhook_provider}", kind, timed, content=raw,
                         headers={"X-Signature": sign(self.webhook_secret, raw),
                                  "content-type": "application/json"})  # fmt: skip

    async def run(self, rate: float, count: int, progress: Callable[[int], None] | None = None) -> Result:
        """Start ``count`` payments at ``rate`` per second; wait for every answer."""
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            start = time.perf_counter()
            for i in range(count):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._spawn(self._one(client, self.rng.choice(self.payers)))
                self.result.sent += 1
                if progress:
                    progress(i + 1)
            while self._pending:
                await asyncio.gather(*list(self._pending))
            self.result.elapsed = time.perf_counter() - start
        return self.result
