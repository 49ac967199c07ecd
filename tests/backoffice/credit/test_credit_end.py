"""One definition of a unit's credit end (issue 21, docs/credit_end.md): ``contracts.credit_end`` is what
the contract's tokens give the unit, the same as the unit's keypad (the official decoder) makes of them
entered when they were issued; a time-mode unit that pays after its credit lapsed gets the days it paid
for; a late payer's receipt, unit page, reminder and SET_TIME token tell the same day."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpaygo import MetricsRequestHandler, TokenType, decode_token

from backoffice import clock
from backoffice.audit.schemas import Actor
from backoffice.config import Settings
from backoffice.credit import service as credit
from backoffice.sms import service as sms
from firmware_sim.keypad import Entry, Keypad
from ingest import repository as ingest_repository
from ingest.device_api import create_device_app
from paygo.web import create_app
from protocol.openpaygo_metrics import DATA_FORMATS
from tests.support.money import Account, make_accounts, make_products
from tests.support.staff import api_token

NOW = "2027-03-01T09:00:00+03:00"
LAMP_DAY = 3_500  # the lamp: 500 KES deposit for 7 days, then 35 KES a day, owned at 9,000 KES


def _credit_end(conn: psycopg.Connection, contract_id: int) -> datetime | float | None:
    """contracts.credit_end as stored (``inf`` for 'infinity': DISABLE_PAYG)."""
    row = conn.execute(
        "select nullif(credit_end, 'infinity'), credit_end = 'infinity' from contracts where id = %s", (contract_id,)
    ).fetchone()
    assert row is not None
    return float("inf") if row[1] else row[0]


def _replay(conn: psycopg.Connection, acct: Account) -> datetime | float | None:
    """When the unit's light stops if it took every token of the contract when it was issued: the unit's
    keypad (firmware_sim, the official decoder) fed them in count order on its own clock."""
    keypad = Keypad(acct.key, acct.starting_code)
    end: datetime | float | None = None
    rows = conn.execute("select token, created_at from tokens where contract_id = %s order by count",
                        (acct.contract_id,)).fetchall()  # fmt: skip
    for token, at in rows:
        left = 0.0 if end is None else float("inf") if end == float("inf") else max((end - at).total_seconds(), 0.0)
        entry, credit_s = keypad.enter(token, left)
        assert entry == Entry.ACCEPTED
        end = float("inf") if credit_s == float("inf") else at + timedelta(seconds=credit_s)
    return end


@pytest.mark.clock(NOW)
def test_the_credit_end_is_what_the_tokens_give_the_unit(
    money_settings: Settings, conn: psycopg.Connection
) -> None:  # fmt: skip
    _, lamp = make_products(conn)
    today, now = clock.today(), clock.utc_now()
    acct = make_accounts(conn, money_settings, lamp, 1, "CE", signed_on=today - timedelta(days=60))[0]
    key = money_settings.secret_key
    assert _credit_end(conn, acct.contract_id) is None  # no token: no credit

    # The deposit 40 days ago (7 days): lapsed 33 days ago.
    deposit_at = now - timedelta(days=40)
    credit.apply_payment(conn, acct.contract_id, 50_000, clock.business_day(deposit_at), key, history_at=deposit_at)
    assert _credit_end(conn, acct.contract_id) == deposit_at + timedelta(days=7) == _replay(conn, acct)

    # 10 days paid today, late: from today's token, not back to back from signing (that was 17 days
    # after signing, 43 days ago: "paid until" a date long gone while the unit is lit).
    late = credit.apply_payment(conn, acct.contract_id, 10 * LAMP_DAY, today, key)
    issued = conn.execute("select max(created_at) from tokens where contract_id = %s", (acct.contract_id,)).fetchone()
    assert issued is not None and abs(issued[0] - now) < timedelta(minutes=1)
    end = _credit_end(conn, acct.contract_id)
    assert end == issued[0] + timedelta(days=10) == _replay(conn, acct)
    assert late.light_until == today + timedelta(days=10) == credit.credit_day(late.credit_end)

    # Goodwill days are tokens too; a payment before the end counts from the end, back to back.
    credit.grant_goodwill(conn, acct.contract_id, 2, "a late technician", key, Actor("cara"))
    on_time = credit.apply_payment(conn, acct.contract_id, 5 * LAMP_DAY, today, key)
    assert _credit_end(conn, acct.contract_id) == issued[0] + timedelta(days=10 + 2 + 5) == _replay(conn, acct)
    assert on_time.light_until == today + timedelta(days=17)

    # Re-dating a token (a backfilled history is dated so) folds the tokens again.
    conn.execute("update tokens set created_at = created_at - interval '4 days' where id = %s",
                 (late.tokens[0]["id"],))  # fmt: skip
    assert _credit_end(conn, acct.contract_id) == issued[0] + timedelta(days=13) == _replay(conn, acct)

    # The rest of the price: DISABLE_PAYG, the light never stops; Metrics says so with its largest time.
    paid = conn.execute("select paid_total from contracts where id = %s", (acct.contract_id,)).fetchone()
    assert paid is not None
    assert credit.apply_payment(conn, acct.contract_id, 900_000 - paid[0], today, key).paid_off
    assert _credit_end(conn, acct.contract_id) == float("inf") == _replay(conn, acct)
    until = ingest_repository.active_until(conn, acct.unit_id)
    assert until is not None and until.year == 2106


def _metrics_request(acct: Account, request_count: int, token_count: int,
                     steps: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    """The unit's OpenPAYGO Metrics request, as the official device-side builder makes it (data auth)."""
    req = MetricsRequestHandler(acct.serial, data_format=DATA_FORMATS[2], secret_key=acct.key, auth_method="ra")
    req.set_request_count(request_count)
    req.set_timestamp(int(clock.utc_now().timestamp()) + request_count)  # strictly higher each time: no replay
    req.set_data({"token_count": token_count, "firmware_version": "1.0", "tampered": False})
    req.set_historical_data(steps or [])
    return json.dumps(req.get_simple_request_dict())


@pytest.fixture
def device_api(money_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_device_app(money_settings)) as c:
        yield c


def _time_mode_lapsed(conn: psycopg.Connection, settings: Settings, prefix: str) -> tuple[Account, int]:
    """A time-mode lamp (its product's units expect one SET_TIME token) signed 60 days ago, whose 7-day
    deposit, paid 40 days ago, lapsed 33 days ago; committed. Returns it and the unit's token count."""
    _, lamp = make_products(conn)
    conn.execute("update products set metrics_set_time = true where id = %s", (lamp,))
    acct = make_accounts(conn, settings, lamp, 1, prefix, signed_on=clock.today() - timedelta(days=60))[0]
    deposit_at = clock.utc_now() - timedelta(days=40)
    credit.apply_payment(conn, acct.contract_id, 50_000, clock.business_day(deposit_at), settings.secret_key,
                         history_at=deposit_at)  # fmt: skip
    conn.commit()
    count = conn.execute("select token_count from units where id = %s", (acct.unit_id,)).fetchone()
    assert count is not None
    return acct, int(count[0])


def _set_time(device_api: TestClient, acct: Account, request_count: int, token_count: int) -> str:
    answer = device_api.post("/dd", content=_metrics_request(acct, request_count, token_count))
    assert answer.status_code == 201, answer.text
    (token,) = answer.json()["token_list"]
    return str(token).zfill(9)


@pytest.mark.clock(NOW)
def test_a_time_mode_unit_that_pays_after_its_credit_lapsed_gets_the_days_it_paid_for(
    money_settings: Settings, conn: psycopg.Connection, device_api: TestClient
) -> None:
    acct, count = _time_mode_lapsed(conn, money_settings, "TML")
    credit.apply_payment(conn, acct.contract_id, 4 * LAMP_DAY, clock.today(), money_settings.secret_key)  # late
    conn.commit()
    token = _set_time(device_api, acct, 1, count)  # the unit lacks the ADD_TIME token: one SET_TIME instead
    value, kind, _, _ = decode_token(token=token, secret_key=acct.key, count=count, used_counts=[count],
                                     starting_code=acct.starting_code)  # fmt: skip
    # Counted back to back from signing (7 + 4 days, 60 days ago) it was SET_TIME 0: paid, and no light.
    assert (kind, value) == (TokenType.SET_TIME, 4)
    end = _credit_end(conn, acct.contract_id)  # the SET_TIME token sets it: 4 days from now
    assert isinstance(end, datetime) and abs(end - (clock.utc_now() + timedelta(days=4))) < timedelta(minutes=1)


@pytest.mark.clock(NOW)
def test_a_late_payers_receipt_unit_page_reminder_and_set_time_agree(
    money_settings: Settings, conn: psycopg.Connection, device_api: TestClient
) -> None:
    acct, count = _time_mode_lapsed(conn, money_settings, "LATE")
    # The customer pays 6 days, 33 days after the credit ran out.
    credit.apply_payment(conn, acct.contract_id, 6 * LAMP_DAY, clock.today(), money_settings.secret_key)
    conn.commit()
    day = clock.today() + timedelta(days=6)

    # 1. The receipt SMS.
    receipt = conn.execute("select body from outbox where contract_id = %s and kind = 'receipt' order by id desc",
                           (acct.contract_id,)).fetchone()  # fmt: skip
    assert receipt is not None
    told = re.search(r"light until (\S+)\.", receipt[0])
    assert told is not None and told.group(1) == day.isoformat(), receipt[0]

    # 2. SET_TIME: the time-mode unit asks, enters the token (the official decoder), reports its credit.
    token = _set_time(device_api, acct, 1, count)
    keypad = Keypad(acct.key, acct.starting_code, count=count, used_counts=[count])
    entered_at = clock.utc_now()
    entry, credit_s = keypad.enter(token, 0.0)
    assert entry == Entry.ACCEPTED and credit_s == 6 * 86_400
    assert clock.business_day(entered_at + timedelta(seconds=credit_s)) == day
    # A second later it reports a second of it counted down.
    step = {"batt_v": 12.8, "batt_a": 0.5, "soc": 0.8, "batt_temp_c": 30.0, "pv_v": 17.0, "pv_w": 20.0, "pv_wh": 5.0,
            "load_wh": 1.0, "credit_s": int(credit_s) - 1, "locked": False, "rssi": -70,
            "timestamp": int(entered_at.timestamp()) + 1}  # fmt: skip
    reported = device_api.post("/dd", content=_metrics_request(acct, 2, keypad.count, [step]))
    assert reported.status_code == 201, reported.text
    assert not reported.json().get("token_list")  # it has them all

    # 3. The unit page: what the tokens gave ("paid until") and what the unit says ("credit left ... until").
    with TestClient(create_app(money_settings), headers=api_token(money_settings.database_url, "call_centre")) as c:
        page = c.get(f"/api/v1/units/{acct.serial}").json()
        html = c.get(f"/units/{acct.serial}").text
    assert f"paid until {day.isoformat()}" in html and f"until {day.isoformat()}" in html.split('id="status"')[1]
    assert page["contract"]["paid_until"] == day.isoformat()
    unit_until = datetime.fromisoformat(page["status"]["credit_until"])
    assert clock.business_day(unit_until) == day
    assert abs(datetime.fromisoformat(page["contract"]["credit_end"]) - unit_until) < timedelta(seconds=2)

    # 4. The reminder the day before.
    run = sms.send_reminders(conn, day - timedelta(days=1), [1])
    assert run.queued == 1
    reminder = conn.execute("select body from outbox where contract_id = %s and kind = 'reminder'",
                            (acct.contract_id,)).fetchone()  # fmt: skip
    assert reminder is not None and f"ends on {day.isoformat()} (1 day left)" in reminder[0]
