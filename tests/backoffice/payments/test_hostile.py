"""The payment doors against an outsider: forged, absurd, malformed and oversized callbacks are
refused or held with their reason, kept raw, and move no money; reversals cannot be played against
each other. (Each case was found by trying it on the platform; see issue 13.)"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpaygo import TokenType, decode_token

from backoffice import clock
from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.payments import service as payments
from backoffice.payments.providers import (
    PaymentEvent,
    Rejected,
    parse_momo_callback,
    parse_mpesa_c2b,
    parse_webhook,
    sign,
)
from paygo.web import create_app
from tests.support import count, serve
from tests.support.fuzz import count as fuzz_count
from tests.support.money import (
    MONEY_NOW,
    SHORTCODE,
    WEBHOOK_SECRET,
    Device,
    confirmation,
    make_accounts,
    make_products,
    webhook,
)
from tests.support.staff import api_token

pytestmark = pytest.mark.clock(MONEY_NOW)

NOW = clock.parse_instant(MONEY_NOW)  # the pinned clock's instant (read at import, before any pin)


def _mpesa(
    server: str, body: object, path: str = "/payments/mpesa/c2b/confirmation", headers: dict[str, str] | None = None
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server + path, content=raw, headers={"content-type": "application/json", **(headers or {})})


def _now(body: dict[str, str]) -> dict[str, str]:
    """Dated now (East Africa Time), as a real confirmation is."""
    return body | {"TransTime": clock.utc_now().astimezone().strftime("%Y%m%d%H%M%S")}


@pytest.fixture
def strict(money_settings: Settings) -> Iterator[tuple[Settings, str]]:
    """The platform with its production limits: the 72-hour window, the KES ceiling of 250,000."""
    settings = money_settings.model_copy(update={"payment_time_window_hours": 72})
    with serve(create_app(settings)) as url:
        yield settings, url


def _money_moved(conn: psycopg.Connection) -> tuple[int, int]:
    return count(conn, "select count(*) from ledger_entries where status = 'completed'"), count(
        conn, "select count(*) from tokens"
    )


def test_absurd_mpesa_amounts_and_dates_are_refused_or_held_never_credited(
    strict: tuple[Settings, str], conn: psycopg.Connection
) -> None:
    settings, server = strict
    _, flexible = make_products(conn)
    acct = make_accounts(conn, settings, flexible, 1, "ABS")[0]
    before = _money_moved(conn)
    refused = {"1_000": "plain decimal", "١٢٣": "plain decimal", "1e3": "plain decimal", "12.5.0": "plain decimal",
               "0": "must be positive", "NaN": "plain decimal", "99999999999999999999": "plain decimal"}  # fmt: skip
    for amount, why in refused.items():
        reply = _mpesa(server, confirmation(acct.number, amount))
        assert reply.json()["ResultCode"] == "C2B00013" and why in reply.json()["ResultDesc"], (amount, reply.text)
    # 900,000,000 KES would pay any contract off: held for finance, with the reason, not credited.
    held = _mpesa(server, _now(confirmation(acct.number, "900000000", txn="BIG")))
    assert held.status_code == 200 and held.json()["ResultCode"] == 0  # kept, so Daraja must not retry
    row = conn.execute("select status, reason from payment_inbox where provider_txn_id = 'BIG'").fetchone()
    assert row is not None and row[0] == "held" and "above the ceiling of 250000" in row[1]
    # A TransTime in 9999 (or years ago) is held too; year 0001 is not a date M-Pesa can send.
    assert (
        _mpesa(server, confirmation(acct.number, "100", txn="FUTURE") | {"TransTime": "99991231235959"}).status_code
        == 200
    )
    assert conn.execute("select status from payment_inbox where provider_txn_id = 'FUTURE'").fetchone() == ("held",)
    ancient = _mpesa(server, confirmation(acct.number, "100", txn="OLD") | {"TransTime": "00010101000000"})
    assert ancient.json()["ResultCode"] == "C2B00016" and "before 2000" in ancient.json()["ResultDesc"]
    assert _money_moved(conn) == before
    assert count(conn, "select count(*) from ledger_entries where entry_date > now() + interval '1 day'") == 0
    queue = httpx.get(f"{server}/api/unmatched", headers=api_token(settings.database_url, "finance")).json()
    assert {(u["provider_txn_id"], u["kind"]) for u in queue} == {("BIG", "held"), ("FUTURE", "held")}


def test_nul_surrogates_deep_json_huge_ids_and_bodies_get_a_4xx_and_keep_what_arrived(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "NUL")[0]
    before = _money_moved(conn)
    nul = _mpesa(server, confirmation(acct.number, "100", txn="NUL1") | {"FirstName": "A\u0000B"})
    assert nul.json()["ResultCode"] == "C2B00016" and "NUL" in nul.json()["ResultDesc"]
    surrogate = _mpesa(server, b'{"TransID": "SUR1", "BillRefNumber": "\\ud800", "TransAmount": "100"}')
    assert surrogate.status_code == 200 and "invalid Unicode" in surrogate.json()["ResultDesc"]
    kept = conn.execute("select provider_txn_id, status, raw from payment_inbox order by id").fetchall()
    assert [(t, s) for t, s, _ in kept[:1]] == [("NUL1", "rejected")] and b"\\u0000" in bytes(kept[0][2])
    deep = _mpesa(server, b"[" * 30_000 + b"]" * 30_000)  # under the body cap, past the parser's depth
    assert deep.status_code == 200 and "nested too deep" in deep.json()["ResultDesc"]
    huge = _mpesa(server, b'{"pad": "' + b"x" * 200_000 + b'"}')
    assert huge.status_code == 413
    finance = api_token(money_settings.database_url, "finance")
    for path in ("/api/unmatched/9223372036854775808/refund", "/api/unmatched/99999999999999999999/assign"):
        assert httpx.post(server + path, json={"note": "x"}, headers=finance).status_code == 422
    assert httpx.get(f"{server}/?q=%00", headers=finance).status_code == 400
    assert httpx.get(f"{server}/api/payments?status=a%00b", headers=finance).status_code == 400
    manual = {"reference": "R\u0000", "account": acct.number, "amount": "10", "currency": "KES"}
    assert httpx.post(f"{server}/api/payments/manual", headers=finance, json=manual).status_code in (400, 422)
    assert _money_moved(conn) == before
    assert count(conn, "select count(*) from payment_inbox where octet_length(raw) > 100000") == 0  # 413: unread


def test_a_failure_after_storing_keeps_the_raw_callback_with_the_reason(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "ERR")[0]
    key = conn.execute("select openpaygo_key_enc from units where id = %s", (acct.unit_id,)).fetchone()[0]  # type: ignore[index]
    conn.execute("update units set openpaygo_key_enc = null where id = %s", (acct.unit_id,))  # tokens fail
    conn.commit()
    reply = _mpesa(server, confirmation(acct.number, "500", txn="BROKEN"))
    assert reply.status_code == 500  # our fault, not the caller's: the provider retries later
    row = conn.execute("select status, reason, raw from payment_inbox where provider_txn_id = 'BROKEN'").fetchone()
    assert row is not None and row[0] == "error" and "has no OpenPAYGO key" in row[1] and b"BROKEN" in bytes(row[2])
    assert _money_moved(conn) == (0, 0)
    # Fixed, the provider's retry is processed now (not answered as a duplicate of the failure).
    conn.execute("update units set openpaygo_key_enc = %s where id = %s", (key, acct.unit_id))
    conn.commit()
    retry = _mpesa(server, confirmation(acct.number, "500", txn="BROKEN"))
    assert retry.status_code == 200 and "x-duplicate" not in retry.headers
    assert conn.execute("select status from payment_inbox where provider_txn_id = 'BROKEN'").fetchone() == ("credited",)
    assert _money_moved(conn) == (1, 1)
    # A payment settled on first sight leaves no 'settled' row (nor the customer's details) in the trail.
    assert count(conn, "select count(*) from audit_log where action = 'settled'") == 0


def test_reversals_only_by_their_own_provider_never_twice_and_they_close_the_unmatched_item(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "RVX")[0]
    _mpesa(server, confirmation(acct.number, "500", txn="MP1"))
    # Wing's signature cannot reverse M-Pesa's payment.
    other = {"transaction_id": "R1", "reverses": "MP1", "reverses_provider": "mpesa", "amount": "500",
             "account": acct.number, "currency": "KES", "paid_at": NOW.isoformat()}  # fmt: skip
    refused = webhook(server, other)
    assert refused.status_code == 400 and "wing cannot reverse a payment of mpesa" in refused.json()["reason"]
    assert conn.execute("select status from payment_inbox where provider_txn_id = 'MP1'").fetchone() == ("credited",)
    # Money that matched no account, reversed while it waits: finance can no longer assign it.
    typo = acct.number[:-1] + str((int(acct.number[-1]) + 3) % 10)
    lost = {"transaction_id": "W1", "amount": "70", "account": typo, "currency": "KES", "paid_at": NOW.isoformat()}
    assert webhook(server, lost).json()["status"] == "unmatched"
    back = {"transaction_id": "W1-REV", "reverses": "W1", "amount": "70", "account": typo, "currency": "KES",
            "paid_at": NOW.isoformat()}  # fmt: skip
    assert webhook(server, back).json()["status"] == "reversed"
    assert webhook(server, back | {"transaction_id": "W1-REV-REV", "reverses": "W1-REV"}).status_code == 400
    finance = api_token(money_settings.database_url, "finance")
    item = conn.execute("select u.id, u.state from unmatched_payments u").fetchone()
    assert item is not None and item[1] == "reversed"
    late = httpx.post(f"{server}/api/unmatched/{item[0]}/assign", json={"account": acct.number}, headers=finance)
    assert late.status_code == 409 and "already reversed" in late.json()["detail"]
    assert count(conn, "select paid_total from contracts where id = %s", acct.contract_id) == 50_000


@pytest.mark.clock("2026-11-22T10:00:00+03:00")
def test_reversing_the_payment_that_paid_a_contract_off_relocks_the_unit_with_its_days_left(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "OFF")[0]
    device = Device(acct)
    for txn, amount in (("P1", "500"), ("P2", "3000"), ("P3", "5500")):  # 9,000 KES: the lamp is owned
        paid = {"transaction_id": txn, "amount": amount, "account": acct.number, "currency": "KES",
                "paid_at": NOW.isoformat()}  # fmt: skip
        for token in webhook(server, paid).json().get("tokens", []):
            assert device.enter(token)
    assert device.unlocked and count(conn, "select count(*) from contracts where state = 'paid_off'") == 1
    undo = {"transaction_id": "P3-REV", "reverses": "P3", "amount": "5500", "account": acct.number,
            "currency": "KES", "paid_at": NOW.isoformat()}  # fmt: skip
    reply = webhook(server, undo).json()
    assert reply["status"] == "reversed" and len(reply["tokens"]) == 1
    assert conn.execute("select state from contracts where id = %s", (acct.contract_id,)).fetchone() == ("active",)
    value, kind, _, _ = decode_token(token=reply["tokens"][0], secret_key=acct.key, count=device.count,
                                     used_counts=device.used, starting_code=acct.starting_code)  # fmt: skip
    # 3,500 KES buy the 7 deposit days and 85 more, their tokens issued today: 92 days left from today.
    assert kind == TokenType.SET_TIME and value == 7 + 85


def test_mpesa_callbacks_only_from_allowed_sources_and_under_the_secret_path(
    money_settings: Settings, conn: psycopg.Connection
) -> None:
    _, flexible = make_products(conn)
    acct = make_accounts(conn, money_settings, flexible, 1, "SRC")[0]
    guarded = money_settings.model_copy(update={"mpesa_allowed_sources": "196.201.214.0/24",
                                                "mpesa_path_secret": "s3cret-path"})  # fmt: skip
    with serve(create_app(guarded)) as server:
        body = confirmation(acct.number, "500", txn="SRC1")
        secret = "/payments/mpesa/s3cret-path/c2b/confirmation"
        assert _mpesa(server, body).status_code == 404  # the plain path is closed once a secret is set
        assert _mpesa(server, body, "/payments/mpesa/wrong/c2b/confirmation").status_code == 404
        # We (127.0.0.1) are the trusted proxy: the caller is the last untrusted X-Forwarded-For hop.
        outsider = _mpesa(server, body, secret, headers={"X-Forwarded-For": "196.201.214.9, 203.0.113.7"})
        assert outsider.status_code == 403 and "203.0.113.7" in outsider.text
        assert _mpesa(server, body, secret).status_code == 403  # no forwarded address: the proxy itself
        assert count(conn, "select count(*) from payment_inbox") == 0
        ok = _mpesa(server, body, secret, headers={"X-Forwarded-For": "196.201.214.9"})
        assert ok.status_code == 200 and ok.json()["ResultCode"] == 0
    assert count(conn, "select count(*) from payment_inbox where status = 'credited'") == 1


def test_webhook_secrets_and_shortcode_still_guard_their_doors(
    money_settings: Settings, conn: psycopg.Connection, server: str
) -> None:
    raw = json.dumps({"transaction_id": "F1", "amount": "100", "account": "00000018", "currency": "KES",
                      "paid_at": NOW.isoformat()}).encode()  # fmt: skip
    forged = httpx.post(f"{server}/payments/webhook/wing", content=raw, headers={"X-Signature": "00" * 32})
    assert forged.status_code == 400 and "X-Signature" in forged.json()["reason"]
    assert httpx.post(f"{server}/payments/webhook/nobody", content=raw).status_code == 404
    other = _mpesa(server, confirmation("00000018", "100", shortcode=str(int(SHORTCODE) + 1)))
    assert other.json()["ResultCode"] == "C2B00015"
    assert count(conn, "select count(*) from payment_inbox where status = 'credited'") == 0
    assert WEBHOOK_SECRET not in forged.text


def test_momo_callbacks_credit_only_our_requests_for_the_amount_asked_and_confirmed_by_mtn(
    money_settings: Settings, conn: psycopg.Connection
) -> None:
    from backoffice.registry import repository as registry
    from tests.support.momo import momo_standin

    product = registry.insert_product(conn, code="UG-H", name="Lamp UG", business_model="flexible",
                                      currency="UGX", hardware_cost=100_000, price_per_day=1_000,
                                      deposit_amount=0, deposit_days=0)  # fmt: skip
    acct = make_accounts(conn, money_settings, product, 1, "MOMO")[0]
    with momo_standin(money_settings) as (settings, wallets), serve(create_app(settings)) as server:
        agent = api_token(settings.database_url, "call_centre")
        asked = {"account": acct.number, "amount": "100", "currency": "UGX", "msisdn": "256700000001"}
        reference = httpx.post(f"{server}/api/payments/momo/requests", json=asked, headers=agent).json()["reference_id"]
        body = {"amount": "100", "currency": "UGX", "externalId": acct.number, "status": "SUCCESSFUL",
                "payer": {"partyIdType": "MSISDN", "partyId": "256700000001"}}  # fmt: skip
        # A reference the platform never created.
        unknown = httpx.post(f"{server}/payments/momo/callback/b1c1f9a2-0000-4000-8000-000000000000", json=body)
        assert unknown.status_code == 400 and "no request-to-pay of ours" in unknown.json()["reason"]
        # Our request for 100, "settled" by a forged callback for 4,000.
        bigger = httpx.post(f"{server}/payments/momo/callback/{reference}", json=body | {"amount": "4000"})
        assert bigger.status_code == 400 and "we asked for 100 UGX" in bigger.json()["reason"]
        # The right amount, but MTN's own status API still says PENDING: nothing is credited.
        forged = httpx.post(f"{server}/payments/momo/callback/{reference}", json=body)
        assert forged.json()["status"] == "pending"
        # Nor can a forged FAILED close the request before the customer approves it.
        failed = httpx.post(f"{server}/payments/momo/callback/{reference}", json=body | {"status": "FAILED"})
        assert failed.json()["status"] == "pending"
        # The customer really approves: now MTN confirms it, and 100 UGX (not 4,000) are credited.
        wallets.requests[reference]["callback"] = f"{server}/payments/momo/callback/{reference}"
        real = wallets.approve(reference)
        assert real is not None and real.json()["status"] == "credited"
    assert count(conn, "select paid_total from contracts where id = %s", acct.contract_id) == 100
    assert count(conn, "select count(*) from payment_inbox where provider = 'momo' and status = 'credited'") == 1
    refused = conn.execute("select after from audit_log where action = 'momo-callback-refused'").fetchall()
    assert len(refused) == 1 and "4000" in refused[0][0]["raw"]
    # Every callback's bytes were kept before it was processed, with what became of it.
    kept = conn.execute("select inbox_id is not null, outcome, raw from payment_callbacks order by id").fetchall()
    assert [(ours, outcome.split(":")[0]) for ours, outcome, _ in kept] == [
        (False, "rejected"),
        (True, "rejected"),
        (True, "pending"),
        (True, "pending"),
        (True, "credited"),
    ]
    assert b'"4000"' in bytes(kept[1][2]) and b'"FAILED"' in bytes(kept[3][2])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
mpesa_like = st.fixed_dictionaries(
    {
        "TransID": st.text(max_size=20),
        "BusinessShortCode": st.sampled_from([SHORTCODE, "1", ""]),
        "TransAmount": st.one_of(st.text(max_size=24), st.integers(), st.floats()),
        "BillRefNumber": st.text(max_size=12),
        "TransTime": st.one_of(st.text(max_size=16), st.from_regex(r"[0-9]{14}", fullmatch=True)),
    },  # fmt: skip
    optional={"FirstName": json_values, "extra": json_values},
)


def _storable(event: PaymentEvent) -> None:
    for text in (event.txn_id, event.account, event.currency, event.payer or ""):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate
    assert 0 < event.amount < 2**63 and event.paid_at.year >= 2000


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(st.one_of(st.binary(max_size=400), mpesa_like.map(lambda d: json.dumps(d).encode()),
                 json_values.map(lambda v: json.dumps(v).encode())))  # fmt: skip
def test_every_provider_parser_answers_any_bytes_with_an_event_or_a_reason(raw: bytes) -> None:
    fuzz_count("hypothesis: provider parsers (M-Pesa, MoMo, webhook) on generated bodies")
    parsers = (
        lambda: parse_mpesa_c2b(raw, {SHORTCODE}),
        lambda: parse_momo_callback(raw, "ref-1", {"UGX"}),
        lambda: parse_webhook(raw, "wing", sign(WEBHOOK_SECRET, raw), {"wing": WEBHOOK_SECRET}),
    )
    for parse in parsers:
        try:
            event = parse()
        except Rejected as err:
            assert err.reason and "\x00" not in err.reason
        else:
            _storable(event)


def test_a_reversal_dated_outside_the_window_is_held_for_finance_and_moves_nothing(
    strict: tuple[Settings, str], conn: psycopg.Connection
) -> None:
    """Issue 22 finding 5: a signed reversal dated 2001-01-01 wrote a ledger row in 2001 and re-locked the
    unit with a SET_TIME of 995 days. Reversals obey the payments' window: held for finance, whose
    release applies it, dated the day of the release."""
    settings, url = strict
    _, flexible = make_products(conn)
    acct = make_accounts(conn, settings, flexible, 1, "REV")[0]
    paid = {"transaction_id": "R1", "amount": "700", "account": acct.number, "currency": "KES",
            "paid_at": clock.utc_now().isoformat()}  # fmt: skip
    assert webhook(url, paid).json()["status"] == "credited"
    before = _money_moved(conn)
    for txn, when in (("R1-OLD", "2001-01-01T00:00:00+00:00"), ("R1-FUTURE", "2999-01-01T00:00:00+00:00")):
        undo = {"transaction_id": txn, "reverses": "R1", "amount": "700", "account": acct.number, "currency": "KES",
                "paid_at": when}  # fmt: skip
        reply = webhook(url, undo).json()
        assert reply["status"] == "held" and "outside" in reply["reason"], reply
        assert "tokens" not in reply
    assert _money_moved(conn) == before
    assert count(conn, "select count(*) from ledger_entries where entry_date < '2020-01-01' or amount < 0") == 0
    assert conn.execute("select status from payment_inbox where provider_txn_id = 'R1'").fetchone() == ("credited",)
    held = conn.execute("select id, reverses from unmatched_payments where state = 'open' order by id").fetchall()
    assert [r[1] for r in held] == ["R1", "R1"]
    conn.rollback()

    finance = Actor("finance-test")
    with conn.transaction(), pytest.raises(payments.ResolutionError, match="a reversal"):
        payments.assign_unmatched(conn, held[0][0], acct.number, finance, settings.secret_key)
    with conn.transaction(), pytest.raises(payments.ResolutionError, match="nothing to refund"):
        payments.refund_unmatched(conn, held[0][0], finance, "no")
    with conn.transaction():  # finance confirmed the first with the provider: applied today
        payments.release_held(conn, held[0][0], finance, settings.secret_key, "confirmed by Wing")
    # Undone type for type (500 deposit, 200 payment: issue 21), dated the day of the release.
    rows = conn.execute("select entry_date, sum(amount) from ledger_entries where amount < 0 group by 1").fetchall()
    assert rows == [(clock.today(), -70000)]
    assert conn.execute("select status from payment_inbox where provider_txn_id = 'R1'").fetchone() == ("reversed",)
    with conn.transaction(), pytest.raises(payments.ResolutionError, match="cannot be applied"):
        payments.release_held(conn, held[1][0], finance, settings.secret_key)  # R1 is reversed already
