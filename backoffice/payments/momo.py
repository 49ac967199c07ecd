"""MTN MoMo Collections: a small client for request-to-pay status, and the poll of PENDING requests
(MoMo sends its callback once and never retries it, so a missed callback is found by asking)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import httpx
import psycopg

from backoffice.config import Settings
from backoffice.payments import providers, repository, service

log = logging.getLogger(__name__)


class MomoClient:
    def __init__(self, settings: Settings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.http = http or httpx.Client(timeout=15)
        self._token: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Ocp-Apim-Subscription-Key": self.settings.momo_subscription_key}

    def token(self) -> str:
        if self._token is None:
            reply = self.http.post(
                f"{self.settings.momo_base_url}/collection/token/",
                auth=(self.settings.momo_api_user, self.settings.momo_api_key),
                headers=self._headers(),
            )
            reply.raise_for_status()
            self._token = str(reply.json()["access_token"])
        return self._token

    def status(self, reference_id: str) -> bytes:
        """The raw JSON of ``GET /collection/v1_0/requesttopay/{reference_id}``."""
        reply = self.http.get(
            f"{self.settings.momo_base_url}/collection/v1_0/requesttopay/{reference_id}",
            headers={
                **self._headers(),
                "Authorization": f"Bearer {self.token()}",
                "X-Target-Environment": self.settings.momo_target_environment,
            },  # fmt: skip
        )
        reply.raise_for_status()
        return reply.content


@dataclass
class PollReport:
    asked: int = 0
    settled: int = 0
    still_pending: int = 0
    errors: int = 0


def poll_pending(
    conn: psycopg.Connection, client: MomoClient, settings: Settings, older_than: timedelta = timedelta(minutes=1)
) -> PollReport:
    """Ask MoMo about every request still PENDING; each answer is one transaction of its own
    (``conn`` is in autocommit mode)."""
    report = PollReport()
    currencies = {c.strip().upper() for c in settings.momo_currencies.split(",") if c.strip()}
    for reference in repository.pending_references(conn, "momo", older_than):
        report.asked += 1
        try:
            raw = client.status(reference)
        except httpx.HTTPError as err:
            log.warning("momo poll failed reference=%s error=%s", reference, err)
            report.errors += 1
            continue
        try:
            parsed: providers.PaymentEvent | providers.Rejected = providers.parse_momo_callback(
                raw, reference, currencies
            )
        except providers.Rejected as err:
            parsed = err
        with conn.transaction():
            outcome = service.intake(conn, "momo", raw, parsed, service.plain_answer, settings.secret_key)
        if outcome.status == "pending":
            report.still_pending += 1
        else:
            report.settled += 1
    return report
