"""OpenPAYGO Metrics over HTTP (POST /dd): signed with the unit's key, replay-protected, stored by the
same writer as MQTT telemetry, answered with the tokens waiting for the unit."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from openpaygo import MetricsRequestHandler, decode_token
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

import protocol
from backoffice import clock
from backoffice.config import Settings
from backoffice.credit.service import apply_payment
from ingest.device_api import create_device_app
from protocol.openpaygo_metrics import DATA_FORMATS
from tests.support import count, ingest_worker_thread, lamp_contract, wait_for


@pytest.fixture
def unit(settings: Settings, conn: psycopg.Connection) -> tuple[str, str, int]:
    contract, key, _ = lamp_contract(conn, settings.secret_key, "DD-1", "Zawadi", installed_days_ago=10)
    conn.commit()
    return key, "DD-1", contract


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_device_app(settings)) as c:
        yield c


def _request(key: str, count: int, steps: int = 3, condensed: bool = False) -> bytes:
    req = MetricsRequestHandler("DD-1", data_format=DATA_FORMATS[1], secret_key=key, auth_method="ra")
    req.set_request_count(count)
    now = int(clock.utc_now().timestamp())
    req.set_timestamp(now)
    req.set_data({"token_count": 1, "firmware_version": "2.1"})
    start = now - 1200 * steps
    step = {"batt_v": 12.6, "soc": 0.5, "pv_wh": 6.0, "load_wh": 2.0, "batt_temp_c": 31.0}
    if condensed:  # positional steps; the first is dated by the request's timestamp
        req.set_historical_data([step])
    else:
        req.set_historical_data([step | {"timestamp": start + 1200 * i} for i in range(steps)])
    payload = req.get_condensed_request_payload() if condensed else req.get_simple_request_payload()
    return payload.encode() if isinstance(payload, str) else payload


def test_signed_request_stored_replay_refused(
    client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    key, _, _ = unit
    body = _request(key, count=1)
    stamped = int(clock.utc_now().timestamp())  # the request's timestamp, or a second after it
    assert count(conn, "select count(*) from unit_presence") == 0
    ok = client.post("/dd", content=body)
    assert ok.status_code == 201, ok.text
    assert count(conn, "select count(*) from telemetry") == 3
    # Reporting over HTTP is its announcement (issue 26): online since this request, not "never announced".
    since = conn.execute("select changed_at from unit_presence where online").fetchone()
    assert since is not None and clock.utc_now() - since[0] < timedelta(minutes=1)
    assert count(conn, "select sum(reports) from telemetry_daily") == 3  # the same path as MQTT
    replay = client.post("/dd", content=body)
    assert replay.status_code == 403 and "not above the last" in replay.json()["error"]
    older = client.post("/dd", content=_request(key, count=1, steps=1))
    assert older.status_code == 403
    forged = client.post("/dd", content=_request("00" * 16, count=5))
    assert forged.status_code == 403
    assert client.post("/dd", content=b"{not json").status_code == 400
    assert count(conn, "select count(*) from ingest_rejects where topic = 'http:/dd'") == 4
    assert count(conn, "select count(*) from telemetry") == 3  # nothing from the refused ones
    # Timestamps are whole seconds and must increase too: wait for the clock's next second.
    wait_for(lambda: int(clock.utc_now().timestamp()) > stamped, timeout=5, what="the next second")
    newer = client.post("/dd", content=_request(key, count=2, steps=1))
    assert newer.status_code == 201
    assert conn.execute("select changed_at from unit_presence").fetchone() == since  # online all along


def test_condensed_request_gets_the_waiting_tokens(
    settings: Settings, client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    key, serial, contract = unit
    credited = apply_payment(conn, contract, 3_500 * 4, clock.today(), settings.secret_key)
    conn.commit()
    answer = client.post("/dd", content=_request(key, count=7, condensed=True))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    tokens = body.get("tkl") or body.get("token_list")
    assert tokens and str(tokens[0]).zfill(9) == credited.tokens[0]["token"]
    assert "a" in body or "auth" in body  # the answer is signed with the unit's key
    start = conn.execute("select starting_code from units where serial = %s", (serial,)).fetchone()
    assert start is not None
    value, _, _, _ = decode_token(token=str(tokens[0]).zfill(9), secret_key=key, count=1, used_counts=[1],
                                  starting_code=start[0])  # fmt: skip
    assert value == 4
    assert json.loads(answer.text)  # plain JSON


def test_the_same_body_over_mqtt(settings: Settings, conn: psycopg.Connection, unit: tuple[str, str, int]) -> None:
    key, serial, _ = unit
    with ingest_worker_thread(settings, "m"):  # subscribed (SUBACK) before anything is published
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        pub.connect(settings.mqtt_host, settings.mqtt_port)
        pub.loop_start()
        where = protocol.topic(serial, "metrics", settings.mqtt_topic_root)
        body = _request(key, count=3)
        for payload in (body, body, b"\xff not json"):  # the second is a replay
            pub.publish(where, payload, qos=1).wait_for_publish(10)
        pub.loop_stop()
        pub.disconnect()
        wait_for(lambda: count(conn, "select count(*) from ingest_rejects") == 2, timeout=20, what="two dead letters")
        assert count(conn, "select count(*) from telemetry") == 3


# ---- hostile requests: each was accepted before (issue 13)


def _body(
    key: str,
    method: str = "ra",
    count: int | None = None,
    timestamp: int | None = None,
    steps: list[dict[str, object]] | None = None,
    serial: str = "DD-1",
) -> bytes:
    """A simple request signed with ``key`` by ``method``, carrying only what is given (steps
    dated 20 minutes apart an hour ago unless they carry their own timestamps)."""
    req = MetricsRequestHandler(serial, data_format=DATA_FORMATS[1], secret_key=key, auth_method=method)
    if count is not None:
        req.set_request_count(count)
    if timestamp is not None:
        req.set_timestamp(timestamp)
    req.set_data({"token_count": 1, "firmware_version": "2.1"})
    start = int(clock.utc_now().timestamp()) - 3600
    step = {"batt_v": 12.6, "soc": 0.5, "pv_wh": 6.0, "load_wh": 2.0, "batt_temp_c": 31.0}
    given = steps if steps is not None else [{}]
    req.set_historical_data([step | {"timestamp": start + 1200 * i} | s for i, s in enumerate(given)])
    return req.get_simple_request_payload().encode()


def _rejects(conn: psycopg.Connection) -> list[tuple[str, bytes]]:
    rows = conn.execute("select reason, payload from ingest_rejects order by id").fetchall()
    conn.rollback()
    return [(reason, bytes(payload)) for reason, payload in rows]


def test_simple_auth_is_refused_unless_the_product_allows_it(
    client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    """Simple auth signs only the serial: its signature, seen once, signs anything."""
    key, _, _ = unit
    forged = _body(key, method="sa", count=1, steps=[{"pv_wh": 90_000.0}])
    refused = client.post("/dd", content=forged)
    assert refused.status_code == 403 and "simple auth ('sa') is not enabled" in refused.json()["error"]
    assert _rejects(conn) == [(refused.json()["error"], forged)]
    assert count(conn, "select count(*) from telemetry") == 0
    conn.execute("update products set metrics_simple_auth = true where code = 'L'")
    conn.commit()
    assert client.post("/dd", content=forged).status_code == 201  # a product whose firmware can do no better
    assert count(conn, "select count(*) from telemetry") == 1


def test_request_count_and_timestamp_cannot_be_played_against_each_other(
    client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    key, _, _ = unit
    now = int(clock.utc_now().timestamp())
    both = _body(key, count=5, timestamp=now - 200, steps=[{"timestamp": now - 3000}])
    assert client.post("/dd", content=both).status_code == 201
    replay = client.post("/dd", content=both)
    assert replay.status_code == 403 and "request count 5 not above the last accepted (5)" in replay.json()["error"]
    # A unit that signed its timestamps keeps signing them: a count-only request is refused, and so
    # is a timestamp-only one (ra hashes the one as it hashes the other).
    count_only = client.post("/dd", content=_body(key, count=6, steps=[{"timestamp": now - 2000}]))
    assert count_only.status_code == 403 and "carries no timestamp" in count_only.json()["error"]
    stamp_only = client.post("/dd", content=_body(key, timestamp=now - 100, steps=[{"timestamp": now - 2000}]))
    assert stamp_only.status_code == 403 and "carries no request count" in stamp_only.json()["error"]
    neither = client.post("/dd", content=_body(key, steps=[{"timestamp": now - 1000}]))
    assert neither.status_code == 403
    # The method is pinned by the first accepted request: timestamp auth is refused for this unit.
    other = client.post("/dd", content=_body(key, method="ta", count=10**12, timestamp=now - 50))
    assert other.status_code == 403 and "this unit signs with 'ra'" in other.json()["error"]
    later = _body(key, count=6, timestamp=now - 50, steps=[{"timestamp": now - 800}])
    assert client.post("/dd", content=later).status_code == 201
    assert conn.execute("select last_request_count, last_request_timestamp, last_auth_method from metrics_state"
                        ).fetchone() == (6, now - 50, "ra")  # fmt: skip
    assert count(conn, "select count(*) from telemetry") == 2


def _forged(body: bytes, method: str, **fields: int | None) -> bytes:
    """``body`` with its auth relabelled ``method`` (the same signature) and its fields replaced."""
    forged = json.loads(body)
    forged["auth"] = method + forged["auth"][2:]
    for name, value in fields.items():
        if value is None:
            forged.pop(name, None)
        else:
            forged[name] = value
    return json.dumps(forged).encode()


def test_a_signature_cannot_be_replayed_under_another_auth_mode(
    client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    """Issue 17 review: the signed string does not separate the mode from the fields."""
    key, _, _ = unit
    now = int(clock.utc_now().timestamp())
    stamped = _body(key, method="ta", timestamp=now - 60)
    assert client.post("/dd", content=stamped).status_code == 201
    # ta signs serial+timestamp, ca serial+count: the same string when the count is that timestamp.
    as_count = _forged(stamped, "ca", request_count=now - 60, timestamp=None)
    refused = client.post("/dd", content=as_count)
    assert refused.status_code == 403 and "this unit signs with 'ta'" in refused.json()["error"]
    assert count(conn, "select count(*) from telemetry") == 1


def test_a_data_auth_signature_cannot_become_a_count_only_request(
    client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    key, _, _ = unit
    now = int(clock.utc_now().timestamp())
    first = _body(key, method="da", count=41, timestamp=now - 120, steps=[{"timestamp": now - 3000}])
    assert client.post("/dd", content=first).status_code == 201
    both = _body(key, method="da", count=42, timestamp=now - 60)
    assert client.post("/dd", content=both).status_code == 201
    # da signs serial + timestamp + count run together: ts=T, rc=42 signs as rc=int(f"{T}42") alone,
    # which has no timestamp for the time window to check.
    glued = _forged(both, "da", request_count=int(f"{now - 60}42"), timestamp=None)
    refused = client.post("/dd", content=glued)
    assert refused.status_code == 403 and "carries no timestamp" in refused.json()["error"]
    assert count(conn, "select count(*) from telemetry") == 2


def test_a_request_count_cannot_jump_far_ahead(
    client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    key, _, _ = unit
    assert client.post("/dd", content=_body(key, method="ca", count=10)).status_code == 201
    far = client.post("/dd", content=_body(key, method="ca", count=10 + 1_000_001))
    assert far.status_code == 403 and "more than 1000000 above the last accepted (10)" in far.json()["error"]
    assert client.post("/dd", content=_body(key, method="ca", count=10 + 1_000_000)).status_code == 201


def test_future_and_ancient_timestamps_are_refused(
    client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    key, _, _ = unit
    now = int(clock.utc_now().timestamp())
    cases = {
        "in the future": _body(key, count=1, timestamp=now + 3600),  # its readings are an hour old
        "before the unit existed": _body(key, count=2, timestamp=now - 40 * 86400),  # installed 10 days ago
        "before the unit existed ": _body(key, count=3, timestamp=946_684_799),  # 1999-12-31
    }
    for why, body in cases.items():
        answer = client.post("/dd", content=body)
        assert answer.status_code == 400 and why.strip() in answer.json()["error"], (why, answer.text)
    ancient_step = client.post("/dd", content=_body(key, count=4, steps=[{"timestamp": 86400}]))  # 1970-01-02
    assert ancient_step.status_code == 400, ancient_step.text
    assert count(conn, "select count(*) from telemetry") == 0
    assert count(conn, "select count(*) from metrics_state") == 0  # no refused request moved the replay check
    assert client.post("/dd", content=_body(key, count=1, timestamp=now)).status_code == 201


def test_readings_pass_the_same_ranges_as_mqtt(
    client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    key, _, _ = unit
    cases = {
        "soc: Input should be greater than or equal to 0": {"soc": -5.0},
        "pv_wh: Input should be less than or equal to 100000": {"pv_wh": 1e30},
        "Infinity is not a number JSON allows": {"batt_v": math.inf},
    }
    for n, (why, step) in enumerate(cases.items(), start=1):
        answer = client.post("/dd", content=_body(key, count=n, steps=[{}, step]))
        assert answer.status_code == 400 and why in answer.json()["error"], (why, answer.text)
    reasons = [reason for reason, _ in _rejects(conn)]
    assert len(reasons) == 3 and all(why in r for why, r in zip(cases, reasons, strict=True))
    assert count(conn, "select count(*) from telemetry") == 0  # not even the good first step
    assert count(conn, "select count(*) from telemetry_daily") == 0


def test_an_oversized_request_is_refused_with_a_dead_letter(
    client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    body = b'{"sn": "DD-1", "pad": "' + b"x" * 1_000_000 + b'"}'
    answer = client.post("/dd", content=body)
    assert answer.status_code == 413
    assert _rejects(conn) == [(answer.json()["error"], body[:4096])]
