"""MTN MoMo Collections: requests to pay that the platform makes, the check of every callback against
them (our reference, the amount and currency we asked, and MTN's own status API before any money is
credited), and the poll of PENDING requests (MoMo sends its callback once and never retries it, so a
missed callback is found by asking)."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

import httpx
import psycopg

from backoffice.audit import repository as audit
from backoffice.audit.schemas import SYSTEM, Actor
from backoffice.config import Settings
from backoffice.money import to_decimal
from backoffice.payments import providers, repository, service

log = logging.getLogger(__name__)


class MomoClient:
    def __init__(self, settings: Settings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.http = http or httpx.Client(timeout=15)
        self._token: str | None = None

    def __enter__(self) -> MomoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

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

    def request_to_pay(self, r: repository.MomoRequest, callback_url: str) -> None:
        """``POST /collection/v1_0/requesttopay``: ask the customer's wallet for the payment (202)."""
        body = {"amount": str(to_decimal(r.amount, r.currency)), "currency": r.currency, "externalId": r.account,
                "payer": {"partyIdType": "MSISDN", "partyId": r.payer},
                "payerMessage": f"Solar account {r.account}", "payeeNote": f"account {r.account}"}  # fmt: skip
        reply = self.http.post(
            f"{self.settings.momo_base_url}/collection/v1_0/requesttopay",
            json=body,
            headers={
                **self._headers(),
                "Authorization": f"Bearer {self.token()}",
                "X-Reference-Id": r.reference_id,
                "X-Callback-Url": callback_url,
                "X-Target-Environment": self.settings.momo_target_environment,
            },  # fmt: skip
        )
        reply.raise_for_status()

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


class MomoError(RuntimeError):
    """MTN could not be asked; the message says what failed."""


def request_payment(
    conn: psycopg.Connection, client: MomoClient, callback_base: str, account: str, amount: int, currency: str,
    msisdn: str, actor: Actor,
) -> str:  # fmt: skip
    """Ask a customer's MoMo wallet to pay ``amount`` (minor units) to their account; returns our reference.

    The request is stored (and committed) before MTN is asked, so its callback always finds it; if
    MTN cannot be asked, the stored payment is marked failed with the reason. ``conn`` must be idle."""
    reference = str(uuid.uuid4())
    with conn.transaction():
        match = service.match_account(conn, account)
        if isinstance(match, str):
            raise service.ResolutionError(match)
        contract_id, contract_currency = match
        if contract_currency != currency:
            raise service.ResolutionError(f"account {account} is in {contract_currency}, not {currency}")
        request = repository.MomoRequest(reference, contract_id, account, amount, currency, msisdn)
        repository.insert_momo_request(conn, request, actor.name)
        raw = json.dumps({"requested": reference, "account": account, "amount": amount, "currency": currency}).encode()
        inbox_id = repository.insert_inbox(conn, "momo", reference, raw)
        assert inbox_id is not None
        response = service.plain_answer("pending", None, "0", inbox_id, [])
        repository.finish_inbox(conn, inbox_id, "pending", response, account=account, amount=amount,
                                currency=currency, payer=msisdn)  # fmt: skip
        asked = {"reference": reference, "account": account, "amount": amount, "currency": currency}
        audit.record(conn, actor, "momo-requested", "payment", inbox_id, after=asked)
    try:
        client.request_to_pay(request, f"{callback_base}/payments/momo/callback/{reference}")
    except httpx.HTTPError as err:
        with conn.transaction():
            repository.set_status(conn, inbox_id, "failed", f"MTN refused or could not be reached: {err}")
        raise MomoError(f"MTN MoMo could not be asked for the payment: {err}") from None
    return reference


def verify(
    conn: psycopg.Connection, client: MomoClient | None, parsed: providers.PaymentEvent | providers.Rejected,
) -> providers.PaymentEvent | providers.Rejected:  # fmt: skip
    """A MoMo result checked against our request-to-pay: the reference must be ours, the amount and
    currency those we asked (the account is ours, whatever the body says), and a final result (SUCCESSFUL
    or FAILED) is believed only when MTN's status API says so too (``client``; None: the answer came from that
    API already, as in the poll). When the API cannot be asked, the payment stays pending for the poll."""
    if isinstance(parsed, providers.Rejected):
        return parsed
    with conn.transaction():
        ours = repository.momo_request(conn, parsed.txn_id)
    if ours is None:
        return providers.Rejected(f"no request-to-pay of ours has the reference {parsed.txn_id[:60]!r}",
                                  txn_id=parsed.txn_id)  # fmt: skip
    if (parsed.amount, parsed.currency) != (ours.amount, ours.currency):
        return providers.Rejected(
            f"a result for {to_decimal(parsed.amount, parsed.currency)} {parsed.currency}, but we asked for "
            f"{to_decimal(ours.amount, ours.currency)} {ours.currency}", txn_id=parsed.txn_id)  # fmt: skip
    event = replace(parsed, account=ours.account)
    if event.status == "PENDING" or client is None:
        return event
    # A final status is MTN's to say, not the caller's: a forged FAILED would block the real payment.
    try:
        confirmed = providers.parse_momo_callback(client.status(event.txn_id), event.txn_id, {ours.currency})
    except httpx.HTTPError as err:
        log.warning("momo status could not be asked reference=%s error=%s", event.txn_id, err)
        return replace(event, status="PENDING")
    except providers.Rejected as err:
        return providers.Rejected(f"MTN's status answer is not readable: {err.reason}", txn_id=event.txn_id)
    if (confirmed.amount, confirmed.currency) != (ours.amount, ours.currency):
        return providers.Rejected("MTN's status API reports another amount than we asked", txn_id=event.txn_id)
    return replace(event, status=confirmed.status)


def receive_callback(
    conn: psycopg.Connection, client: MomoClient, raw: bytes, parsed: providers.PaymentEvent | providers.Rejected,
    secret_key: str, limits: service.Limits,
) -> service.Outcome:  # fmt: skip
    """A MoMo callback: its raw bytes kept first (``payment_callbacks``, committed), then verified and
    received like any callback. A refused one for a request of ours (a forged amount, say) leaves our
    request as it is: it is answered with its reason, which its kept bytes and the audit trail carry."""
    reference = parsed.txn_id if parsed.txn_id is not None else "unreadable"
    with conn.transaction():
        kept = repository.insert_callback(conn, "momo", reference, raw)
    try:
        outcome = _receive(conn, client, raw, parsed, secret_key, limits)
    except Exception as err:
        with conn.transaction():
            repository.set_callback_outcome(conn, kept, f"error: {type(err).__name__}: {err}".replace("\x00", ""))
        raise
    with conn.transaction():
        repository.set_callback_outcome(conn, kept, outcome.status + (f": {outcome.reason}" if outcome.reason else ""))
    return outcome


def _receive(
    conn: psycopg.Connection, client: MomoClient, raw: bytes, parsed: providers.PaymentEvent | providers.Rejected,
    secret_key: str, limits: service.Limits,
) -> service.Outcome:  # fmt: skip
    checked = verify(conn, client, parsed)
    if isinstance(checked, providers.Rejected) and checked.txn_id is not None:
        with conn.transaction():
            ours = repository.get_inbox(conn, "momo", checked.txn_id)
            if ours is not None:
                seen = {"reason": checked.reason, "raw": raw.decode("utf-8", "replace")[:2000]}
                audit.record(conn, SYSTEM, "momo-callback-refused", "payment", ours.id, after=seen)
        if ours is not None:
            log.warning("momo callback refused reference=%s reason=%s", checked.txn_id, checked.reason)
            response = service.plain_answer("rejected", checked.reason, "0", ours.id, [])
            return service.Outcome("rejected", response, ours.id, reason=checked.reason)
    return service.receive(conn, "momo", raw, checked, service.plain_answer, secret_key, limits)


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
        parsed = verify(conn, None, parsed)  # MTN's own answer: checked against our request only
        with conn.transaction():
            outcome = service.intake(conn, "momo", raw, parsed, service.plain_answer, settings.secret_key)
        if outcome.status == "pending":
            report.still_pending += 1
        else:
            report.settled += 1
    return report
