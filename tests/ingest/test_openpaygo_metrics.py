"""OpenPAYGO Metrics over HTTP (POST /dd): signed with the unit's key, replay-protected, stored by the
same writer as MQTT telemetry, answered with the tokens waiting for the unit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from openpaygo import MetricsRequestHandler, decode_token
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

import protocol
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
    now = int(time.time())
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
    stamped = int(time.time())  # the request's timestamp, or a second after it
    ok = client.post("/dd", content=body)
    assert ok.status_code == 200, ok.text
    assert count(conn, "select count(*) from telemetry") == 3
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
    wait_for(lambda: int(time.time()) > stamped, timeout=5, what="the next second")
    newer = client.post("/dd", content=_request(key, count=2, steps=1))
    assert newer.status_code == 200


def test_condensed_request_gets_the_waiting_tokens(
    settings: Settings, client: TestClient, conn: psycopg.Connection, unit: tuple[str, str, int]
) -> None:
    key, serial, contract = unit
    credited = apply_payment(conn, contract, 3_500 * 4, date.today(), settings.secret_key)
    conn.commit()
    answer = client.post("/dd", content=_request(key, count=7, condensed=True))
    assert answer.status_code == 200, answer.text
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
