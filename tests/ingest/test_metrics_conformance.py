"""OpenPAYGO Metrics conformance: the official ``openpaygo`` device-side request builder
(``MetricsRequestHandler``) is the client of the device API, in every auth mode × simple and
condensed × JSON and CBOR × with and without an accessory; the device checks the server's signed
answer with the library's own response signature; a replayed or reordered request is refused; a data
format is registered, then used. And the new doors refuse outsiders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import psycopg
import pytest
from fastapi.testclient import TestClient
from openpaygo import MetricsRequestHandler, decode_token
from openpaygo.metrics_shared import OpenPAYGOMetricsShared

from backoffice import clock, crypto
from backoffice.audit.schemas import SYSTEM
from backoffice.config import Settings
from backoffice.credit.service import apply_payment, grant_goodwill
from backoffice.registry import service as registry
from ingest.device_api import create_device_app, issue_jwt
from protocol.openpaygo_metrics import DATA_FORMATS
from tests.support import count, lamp_contract
from tests.support.routes import app_routes
from tests.support.staff import api_token

SERIAL, ACCESSORY = "MX-1", "MX-ACC-1"
# A device model's format: what the platform has columns for, and two variables it has none for.
FORMAT: dict[str, Any] = {
    "data_order": ["token_count", "firmware_version", "active_until_timestamp_requested", "tampered"],
    "historical_data_order": ["battery_voltage", "battery_current", "panel_power", "soc", "fan_rpm"],
    "historical_data_interval": 1200,
    "variables": {
        "battery_voltage": {"name": "Battery voltage", "type": "float", "unit": "V", "scale_factor": 0.01},
        "battery_current": {"name": "Battery current", "type": "float", "unit": "A"},
        "panel_power": {"name": "Panel power", "type": "float", "unit": "W", "aggregation_method": "average"},
        "soc": {"name": "State of charge", "type": "float"},
        "fan_rpm": {"name": "Fan speed", "type": "integer", "unit": "rpm", "aggregation_method": "max"},
    },
}
METHODS = ("sa", "ta", "ca", "da", "ra")


@pytest.fixture
def units(settings: Settings, conn: psycopg.Connection) -> dict[str, Any]:
    contract, key, start = lamp_contract(conn, settings.secret_key, SERIAL, "Amani", installed_days_ago=10)
    product = conn.execute("select product_id from units where serial = %s", (SERIAL,)).fetchone()
    assert product is not None
    registry.register_unit(conn, settings.secret_key, ACCESSORY, product[0],
                           installed_at=clock.utc_now() - timedelta(days=10))  # fmt: skip
    acc_key = conn.execute("select openpaygo_key_enc from units where serial = %s", (ACCESSORY,)).fetchone()
    assert acc_key is not None
    conn.commit()
    return {"contract": contract, "key": key, "start": start, "product": product[0],
            "acc_key": crypto.decrypt(settings.secret_key, acc_key[0])}  # fmt: skip


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_device_app(settings)) as c:
        yield c


def _register(client: TestClient, headers: dict[str, str], fmt: dict[str, Any], product: int | None = None) -> int:
    answer = client.post("/data_format", content=json.dumps(fmt), headers=headers,
                         params={"product_id": product} if product else None)  # fmt: skip
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _device(serial: str, fmt: dict[str, Any], key: str, method: str, count: int | None, stamp: int | None,
            data: dict[str, Any], steps: list[dict[str, Any]], condensed: bool) -> dict[str, Any]:  # fmt: skip
    """The request as the official device-side builder makes it (a dict, before encoding)."""
    req = MetricsRequestHandler(serial, data_format=fmt, secret_key=key, auth_method=method)
    if count is not None:
        req.set_request_count(count)
    if stamp is not None:
        req.set_timestamp(stamp)
    req.set_data(data)
    req.set_historical_data(steps)
    return dict(req.get_condensed_request_dict() if condensed else req.get_simple_request_dict())


def _encode(body: dict[str, Any], cbor: bool) -> tuple[bytes, dict[str, str]]:
    if cbor:
        return cbor2.dumps(body), {"content-type": "application/cbor"}
    return OpenPAYGOMetricsShared.convert_to_metrics_json(body).encode(), {"content-type": "application/json"}


def _verified(answer: dict[str, Any], serial: str, key: str, request: dict[str, Any]) -> bool:
    """The device's check of a signed answer, with the library's own response signature."""
    simple = OpenPAYGOMetricsShared.convert_dict_keys_to_simple(answer)
    req = OpenPAYGOMetricsShared.convert_dict_keys_to_simple(request)
    auth = simple.pop("auth")
    expected = OpenPAYGOMetricsShared.generate_response_signature_from_data(
        data=simple, secret_key=key, serial_number=serial, timestamp=req.get("timestamp"),
        request_count=req.get("request_count"))  # fmt: skip
    return bool(auth == expected)


@pytest.mark.parametrize("accessory", [False, True], ids=["alone", "with-accessory"])
@pytest.mark.parametrize("cbor", [False, True], ids=["json", "cbor"])
@pytest.mark.parametrize("condensed", [False, True], ids=["simple", "condensed"])
@pytest.mark.parametrize("method", METHODS)
def test_the_official_device_side_is_served(
    settings: Settings, client: TestClient, conn: psycopg.Connection, units: dict[str, Any],
    method: str, condensed: bool, cbor: bool, accessory: bool,
) -> None:  # fmt: skip
    key = units["key"]
    if method == "sa":
        conn.execute("update products set metrics_simple_auth = true where id = %s", (units["product"],))
    credited = apply_payment(conn, units["contract"], 3_500 * 5, clock.today(), settings.secret_key)
    conn.commit()
    admin = api_token(settings.database_url, "admin")
    fmt = FORMAT | {"id": _register(client, admin, FORMAT, units["product"])}
    now = int(clock.utc_now().timestamp())
    count_ = None if method == "ta" else 7
    stamp = None if method == "ca" else now
    steps = [{"battery_voltage": 1260 + i, "battery_current": -1.5, "panel_power": 30.0 + i, "soc": 0.5,
              "fan_rpm": 1000 + i} for i in range(3)]  # fmt: skip
    data = {"token_count": 1, "firmware_version": "3.0.1", "active_until_timestamp_requested": True,
            "tampered": False}  # fmt: skip
    body = _device(SERIAL, fmt, key, method, count_, stamp, data, steps, condensed)
    if accessory:
        reading = {"batt_v": 12.1, "soc": 0.9, "pv_wh": 1.0, "load_wh": 0.5, "batt_temp_c": 30.0}
        acc = _device(ACCESSORY, DATA_FORMATS[1], units["acc_key"], "ra", 1, now - 5, {"firmware_version": "a1"},
                      [reading], condensed)  # fmt: skip
        body["acc" if condensed else "accessories"] = [acc]
    raw, headers = _encode(body, cbor)

    answer = client.post("/device_data", content=raw, headers=headers)

    assert answer.status_code == 201, answer.text
    assert answer.headers["content-type"].startswith("application/cbor" if cbor else "application/json")
    got = cbor2.loads(answer.content) if cbor else answer.json()
    names = ("tkl", "auts", "a") if condensed else ("token_list", "active_until_timestamp", "auth")
    assert set(got) == set(names), got  # the request's form
    assert _verified(got, SERIAL, key, body)
    assert not _verified(got, SERIAL, units["acc_key"], body)  # another unit's key does not verify it
    token = str(got[names[0]][0]).zfill(9)
    assert token == credited.tokens[0]["token"]
    value, _, _, _ = decode_token(token=token, secret_key=key, count=1, used_counts=[1], starting_code=units["start"])
    assert value == 5
    until = datetime.fromtimestamp(got[names[1]], UTC)
    assert clock.business_day(until) == clock.today() + timedelta(days=5)  # the token's 5 days from now
    rows = conn.execute(
        """select ts, batt_v, batt_a, pv_w, soc, fw, extra from telemetry t join units u on u.id = t.unit_id
           where u.serial = %s order by ts""",
        (SERIAL,),
    ).fetchall()
    assert len(rows) == 3
    assert [round(r[1], 2) for r in rows] == [12.6, 12.61, 12.62]  # scaled by 0.01
    assert {r[5] for r in rows} == {"3.0.1"} and rows[0][2] == -1.5 and rows[2][3] == 32.0
    assert [r[6]["fan_rpm"] for r in rows] == [1000, 1001, 1002]  # kept though no column holds it
    assert rows[2][6]["token_count"] == 1 and rows[2][6]["tampered"] is False  # the current data: newest
    reference = now if stamp else int(rows[2][0].timestamp())
    assert [int(r[0].timestamp()) for r in rows] == [reference - 2400, reference - 1200, reference]
    accessory_rows = count(conn, f"select count(*) from telemetry t join units u on u.id = t.unit_id "
                                 f"where u.serial = '{ACCESSORY}'")  # fmt: skip
    assert accessory_rows == (1 if accessory else 0)
    assert count(conn, "select count(*) from ingest_rejects") == 0
    # The same request again is a replay (every method but simple auth signs a count or timestamp).
    again = client.post("/dd", content=raw, headers=headers)
    assert again.status_code == 403, again.text
    assert count(conn, "select count(*) from telemetry") == 3 + accessory_rows


def _simple(key: str, count_: int, stamp: int | None = None, serial: str = SERIAL) -> bytes:
    ten_minutes_ago = int(clock.utc_now().timestamp()) - 600
    body = _device(serial, DATA_FORMATS[1], key, "ra", count_, stamp, {"token_count": 1},
                   [{"batt_v": 12.5, "timestamp": ten_minutes_ago}], condensed=False)  # fmt: skip
    return json.dumps(body).encode()


def test_replayed_and_reordered_requests_are_refused(
    client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    key = units["key"]
    first, second = _simple(key, 1), _simple(key, 2)
    assert client.post("/dd", content=second).status_code == 201
    reordered = client.post("/dd", content=first)  # sent before, arriving after
    assert reordered.status_code == 403 and "request count 1 not above the last accepted (2)" in reordered.text
    replayed = client.post("/device_data", content=second)
    assert replayed.status_code == 403
    assert count(conn, "select count(*) from ingest_rejects") == 2


def test_a_device_signing_with_another_units_key_is_refused(
    client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    forged = client.post("/dd", content=_simple(units["acc_key"], 1))
    assert forged.status_code == 403 and "bad signature" in forged.text
    # An accessory signed with its parent's key: refused on its own, the parent's data still count.
    acc = _device(ACCESSORY, DATA_FORMATS[1], units["key"], "ra", 1, None, {}, [{"batt_v": 12.0}], False)
    body = json.loads(_simple(units["key"], 2)) | {"accessories": [acc]}
    mixed = client.post("/dd", content=json.dumps(body))
    assert mixed.status_code == 201
    reasons = [r for (r,) in conn.execute("select reason from ingest_rejects order by id")]
    assert reasons[-1] == f"accessory 0 of {SERIAL!r}: bad signature"
    assert count(conn, "select count(*) from telemetry") == 1  # the parent's one step


def test_an_unknown_accessory_is_not_created(
    client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    acc = _device("NOT-REGISTERED", DATA_FORMATS[1], units["key"], "ra", 1, None, {}, [{"batt_v": 12.0}], False)
    body = json.loads(_simple(units["key"], 1)) | {"accessories": [acc]}
    assert client.post("/dd", content=json.dumps(body)).status_code == 201
    assert count(conn, "select count(*) from units where serial = 'NOT-REGISTERED'") == 0
    assert count(conn, "select count(*) from ingest_rejects where serial = 'NOT-REGISTERED'") == 1


def test_a_jwt_for_one_unit_does_not_write_for_an_unsigned_accessory(
    settings: Settings, client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    """Issue 17 review: each accessory carries its own auth with its own key, whatever its parent's."""
    jwt_headers = {"Authorization": f"Bearer {issue_jwt(settings, 'tester', 'device_data', SERIAL)}"}
    step = {"batt_v": 12.0, "timestamp": int(clock.utc_now().timestamp()) - 600}
    unsigned = {"serial_number": SERIAL, "accessories": [{"serial_number": ACCESSORY, "historical_data": [step]}]}
    refused = client.post("/dd", content=json.dumps(unsigned), headers=jwt_headers)
    assert refused.status_code == 400 and "accessory 0: auth must start with" in refused.json()["error"]
    assert count(conn, "select count(*) from telemetry") == 0
    signed = _device(ACCESSORY, DATA_FORMATS[1], units["acc_key"], "ra", 1, None, {}, [step], False)
    accepted = client.post("/dd", content=json.dumps({"serial_number": SERIAL, "accessories": [signed]}),
                           headers=jwt_headers)  # fmt: skip
    assert accepted.status_code == 201, accepted.text
    assert count(conn, "select count(*) from telemetry t join units u on u.id = t.unit_id "
                       f"where u.serial = '{ACCESSORY}'") == 1  # fmt: skip


def test_register_then_use_a_format_and_read_the_data_back(
    settings: Settings, client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    """A format registered with a JWT (before manufacturing), newest first (negative interval), then
    the data read back by an integration's API token, in the simple form."""
    fmt = {"data_order": ["token_count"], "historical_data_order": ["pv_v", "door_open"],
           "historical_data_interval": -300}  # fmt: skip
    jwt_headers = {"Authorization": f"Bearer {issue_jwt(settings, 'factory', 'data_format')}"}
    format_id = _register(client, jwt_headers, fmt)
    assert conn.execute("select registered_by from metrics_data_formats where id = %s", (format_id,)).fetchone() == (
        "jwt:factory",
    )
    assert count(conn, "select count(*) from audit_log where action = 'metrics.data_format.register'") == 1
    conn.commit()
    now = int(clock.utc_now().timestamp())
    body = _device(SERIAL, fmt | {"id": format_id}, units["key"], "ra", 1, now, {"token_count": 1},
                   [{"pv_v": 18.0, "door_open": True}, {"pv_v": 17.0}, {"pv_v": 16.0}], condensed=True)  # fmt: skip
    assert body["df"] == format_id and body["hd"][0] == [18.0, True]
    assert client.post("/dd", content=json.dumps(body)).status_code == 201
    reader = api_token(settings.database_url, "viewer")
    window = {"serial_number": SERIAL, "from_datetime": datetime.fromtimestamp(now - 3600, UTC).isoformat(),
              "to_datetime": datetime.fromtimestamp(now + 60, UTC).isoformat()}  # fmt: skip
    got = client.get("/device_data", params=window, headers=reader)
    assert got.status_code == 200, got.text
    steps = got.json()["historical_data"]
    assert [(s["timestamp"], s["pv_v"]) for s in steps] == [(now - 600, 16.0), (now - 300, 17.0), (now, 18.0)]
    assert steps[2]["door_open"] is True and steps[2]["token_count"] == 1


def test_inline_format_and_relative_time(client: TestClient, conn: psycopg.Connection, units: dict[str, Any]) -> None:
    """A request that carries its own data format; relative_time counts from the step before."""
    now = int(clock.utc_now().timestamp())
    fmt = {"data_order": [], "historical_data_order": ["batt_v", "relative_time"], "historical_data_interval": 60}
    req = MetricsRequestHandler(SERIAL, data_format=fmt, secret_key=units["key"], auth_method="da")
    req.set_request_count(1)
    req.set_timestamp(now)
    req.set_historical_data([{"batt_v": 12.0, "relative_time": -900}, {"batt_v": 12.2, "relative_time": 300}])
    body = req.get_condensed_request_dict()
    assert "dfo" in body
    assert client.post("/dd", content=json.dumps(body)).status_code == 201
    stamps = [int(r[0].timestamp()) for r in conn.execute("select ts from telemetry order by ts")]
    assert stamps == [now - 900, now - 600]


def test_base_url_and_extra_data_are_sent_signed(
    client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    conn.execute(
        """insert into metrics_state (unit_id, base_url, base_url_set_at, extra_data)
           select id, 'https://new.example/metrics/', now(), '{"sun": "990"}' from units where serial = %s""",
        (SERIAL,),
    )
    conn.commit()
    raw = _simple(units["key"], 1, stamp=int(clock.utc_now().timestamp()))
    answer = client.post("/dd", content=raw)
    assert answer.status_code == 201
    got = answer.json()
    assert got["settings"] == {"base_url": "https://new.example/metrics/"} and got["extra_data"] == {"sun": "990"}
    assert _verified(got, SERIAL, units["key"], json.loads(raw))
    assert count(conn, "select count(*) from metrics_state where base_url_sent_at is not null") == 1


# ---- outsiders at the new doors

# The device API's doors and who may knock (its own app: no staff guard, each door checks its proof).
DEVICE_DOORS = {
    ("POST", "/device_data"): "the unit's auth, or a JWT naming the unit",
    ("POST", "/dd"): "the unit's auth, or a JWT naming the unit",
    ("GET", "/device_data"): "an API token: admin, call centre, finance, viewer",
    ("GET", "/dd"): "an API token: admin, call centre, finance, viewer",
    ("POST", "/data_format"): "an administrator's API token, or a JWT of scope data_format",
    ("GET", "/health"): "public: the probes of load balancers and Kubernetes; says only ok",
    ("GET", "/ready"): "public: the readiness probe; says only whether the database answers",
}


def test_the_probes_tell_nothing_but_ok(client: TestClient) -> None:
    """The two public doors of the device API answer anyone, with no data and no database detail."""
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}
    assert client.post("/ready").status_code == 405


def test_the_device_api_has_exactly_these_doors(settings: Settings) -> None:
    """A new route of the device API fails here until its rule is written down (and tested)."""
    routes, mounts = app_routes(create_device_app(settings))
    served = {(m, r.path) for r in routes for m in r.methods if m != "HEAD"}
    assert served == set(DEVICE_DOORS) and mounts == []


def test_outsiders_are_refused_at_the_integration_doors(
    settings: Settings, client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    window = {"serial_number": SERIAL, "from_datetime": "2026-01-01T00:00:00Z", "to_datetime": "2026-01-02T00:00:00Z"}
    fmt = json.dumps({"historical_data_order": ["batt_v"]})
    agent = api_token(settings.database_url, "field_agent")
    viewer = api_token(settings.database_url, "viewer")
    device_jwt = {"Authorization": f"Bearer {issue_jwt(settings, 'tester', 'device_data', SERIAL)}"}
    forged_jwt = {"Authorization": "Bearer " + issue_jwt(settings.model_copy(update={"metrics_jwt_secret": "x" * 32}),
                                                         "me", "data_format")}  # fmt: skip
    device_auth = {"Authorization": "Bearer " + _simple(units["key"], 1).decode()[:40]}
    for headers, status in [({}, 401), (agent, 403), (device_jwt, 401), ({"Authorization": "Bearer pgt_forged"}, 401),
                            ({"Authorization": "Basic eDp5"}, 401)]:  # fmt: skip
        assert client.get("/device_data", params=window, headers=headers).status_code == status, headers
    for headers, status in [({}, 401), (viewer, 403), (agent, 403), (device_jwt, 403), (forged_jwt, 401),
                            (device_auth, 401)]:  # fmt: skip
        assert client.post("/data_format", content=fmt, headers=headers).status_code == status, headers
    assert count(conn, "select count(*) from metrics_data_formats") == 2  # only the built-in ones
    # A JWT for another unit does not stand in for a request's auth.
    other = {"Authorization": f"Bearer {issue_jwt(settings, 'tester', 'device_data', ACCESSORY)}"}
    unsigned = json.dumps({"serial_number": SERIAL, "data": {"token_count": 1}}).encode()
    assert client.post("/dd", content=unsigned, headers=other).status_code == 401
    assert client.post("/dd", content=unsigned).status_code == 400  # no auth at all: not a request
    assert client.post("/dd", content=unsigned, headers=device_jwt).status_code == 201  # testing with a JWT
    # A format registered for another product is not this unit's.
    other_product = conn.execute(
        "insert into products (code, name, business_model, currency) values ('X', 'x', 'flexible', 'KES') returning id"
    ).fetchone()
    assert other_product is not None
    conn.commit()
    foreign = _register(client, api_token(settings.database_url, "admin"), {"historical_data_order": ["batt_v"]},
                        other_product[0])  # fmt: skip
    theirs = {"id": foreign, "data_order": [], "historical_data_order": ["batt_v"], "historical_data_interval": 60}
    body = _device(SERIAL, theirs, units["key"], "ra", 5, None, {}, [{"batt_v": 12.0}], True)
    refused = client.post("/dd", content=json.dumps(body))
    assert refused.status_code == 400 and "unknown data_format_id" in refused.text


# Days left are counted in the company's days: pinned at mid-morning, so that the test's payment and
# the unit's SET_TIME fall on one business day (at 21:00-24:00 UTC Nairobi's day is already the next).
@pytest.mark.clock("2027-03-10T09:00:00+03:00")
def test_tokens_in_count_order_and_one_set_time_in_time_mode(
    settings: Settings, client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    key, start = units["key"], units["start"]
    for days in (2, 3):
        apply_payment(conn, units["contract"], 3_500 * days, clock.today(), settings.secret_key)
    conn.commit()

    def ask(count_: int, token_count: int) -> list[str]:
        body = _device(SERIAL, DATA_FORMATS[1], key, "ra", count_, None, {"token_count": token_count},
                       [{"batt_v": 12.5}], condensed=True)  # fmt: skip
        answer = client.post("/dd", content=json.dumps(body))
        assert answer.status_code == 201, answer.text
        got = answer.json()
        assert not got or _verified(got, SERIAL, key, body)
        return [str(t).zfill(9) for t in got.get("tkl", [])]

    tokens = ask(1, 1)
    assert len(tokens) == 2
    device_count, used = 1, [1]
    for token, days in zip(tokens, (2, 3), strict=True):  # the device takes them in the order given
        value, kind, device_count, used = decode_token(token=token, secret_key=key, count=device_count,
                                                       used_counts=used, starting_code=start)  # fmt: skip
        assert (value, kind) == (days, 1)  # ADD_TIME
    assert ask(2, device_count) == []  # it has them all
    assert count(conn, "select count(*) from outbox where channel = 'mqtt' and state = 'acked'") == 2

    conn.execute("update products set metrics_set_time = true where id = %s", (units["product"],))
    apply_payment(conn, units["contract"], 3_500 * 4, clock.today(), settings.secret_key)
    conn.commit()
    (set_time,) = ask(3, device_count)
    value, kind, _, _ = decode_token(token=set_time, secret_key=key, count=device_count, used_counts=used,
                                     starting_code=start)  # fmt: skip
    assert (value, kind) == (9, 2)  # SET_TIME: the 2 + 3 + 4 days bought today
    kinds = conn.execute("select token_type, (select count(*) from outbox o where o.token_id = t.id) from tokens t "
                         "order by t.count").fetchall()  # fmt: skip
    assert [k for k, _ in kinds] == ["add_time", "add_time", "add_time", "set_time"]
    assert kinds[-1][1] == 0  # no SMS or MQTT delivery: the answer carried it


def test_active_seconds_left_when_asked(
    settings: Settings, client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    apply_payment(conn, units["contract"], 3_500 * 2, clock.today(), settings.secret_key)
    conn.commit()
    body = _device(SERIAL, DATA_FORMATS[1], units["key"], "ca", 1, None, {"active_seconds_left_requested": True},
                   [{"batt_v": 12.5}], condensed=False)  # fmt: skip
    answer = client.post("/dd", content=json.dumps(body))
    assert answer.status_code == 201, answer.text
    got = answer.json()
    expected = timedelta(days=2).total_seconds()  # its token's 2 days, from when it was issued (just now)
    assert isinstance(got["active_seconds_left"], int) and abs(got["active_seconds_left"] - expected) < 60
    assert set(got) == {"active_seconds_left", "auth"} and _verified(got, SERIAL, units["key"], body)


def test_active_until_counts_goodwill_days(
    settings: Settings, client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    """Issue 17 review: goodwill days light the unit too, so the answer's expiry counts them: the credit
    end its tokens give it (issue 21), 2 + 3 days from when they were issued."""
    issued = clock.utc_now()
    apply_payment(conn, units["contract"], 3_500 * 2, clock.today(), settings.secret_key)
    grant_goodwill(conn, units["contract"], 3, "a late technician", settings.secret_key, SYSTEM)
    conn.commit()
    body = _device(SERIAL, DATA_FORMATS[1], units["key"], "ca", 1, None, {"active_until_timestamp_requested": True},
                   [{"batt_v": 12.5}], condensed=False)  # fmt: skip
    answer = client.post("/dd", content=json.dumps(body))
    assert answer.status_code == 201, answer.text
    end = conn.execute("select credit_end from contracts where id = %s", (units["contract"],)).fetchone()
    assert end is not None and answer.json()["active_until_timestamp"] == int(end[0].timestamp())
    assert abs(end[0] - (issued + timedelta(days=5))) < timedelta(minutes=1)


def test_an_unsigned_token_count_acknowledges_nothing_and_mints_no_set_time(
    settings: Settings, client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    """Issue 17 review: under sa/ta/ca the data are not signed, so their token_count is only a question."""
    key = units["key"]
    apply_payment(conn, units["contract"], 3_500 * 2, clock.today(), settings.secret_key)
    conn.execute("update products set metrics_set_time = true where id = %s", (units["product"],))
    conn.commit()
    tokens_before = count(conn, "select count(*) from tokens")
    body = _device(SERIAL, DATA_FORMATS[1], key, "ca", 1, None, {"token_count": 1}, [{"batt_v": 12.5}], False)
    answer = client.post("/dd", content=json.dumps(body))
    assert answer.status_code == 201, answer.text
    assert len(answer.json()["token_list"]) == 1  # the ADD_TIME token it lacks, not a new SET_TIME
    assert count(conn, "select count(*) from tokens") == tokens_before
    body = _device(SERIAL, DATA_FORMATS[1], key, "ca", 2, None, {"token_count": 10**6}, [{"batt_v": 12.5}], False)
    assert client.post("/dd", content=json.dumps(body)).status_code == 201
    assert count(conn, "select count(*) from outbox where channel = 'mqtt' and state = 'acked'") == 0


def test_time_mode_gives_the_same_set_time_token_while_the_unit_lags(
    settings: Settings, client: TestClient, conn: psycopg.Connection, units: dict[str, Any]
) -> None:
    """Issue 17 review: a unit whose token count lags got a new SET_TIME token at every request."""
    key = units["key"]
    apply_payment(conn, units["contract"], 3_500 * 2, clock.today(), settings.secret_key)
    conn.execute("update products set metrics_set_time = true where id = %s", (units["product"],))
    conn.commit()

    def ask(count_: int) -> list[int]:
        body = _device(SERIAL, DATA_FORMATS[1], key, "ra", count_, None, {"token_count": 1}, [{"batt_v": 12.5}],
                       condensed=False)  # fmt: skip
        answer = client.post("/dd", content=json.dumps(body))
        assert answer.status_code == 201, answer.text
        return list(answer.json()["token_list"])

    first = ask(1)
    assert ask(2) == first and ask(3) == first  # the unit has not taken it yet: the same token
    assert count(conn, "select count(*) from tokens where token_type = 'set_time'") == 1
    apply_payment(conn, units["contract"], 3_500, clock.today(), settings.secret_key)
    conn.commit()
    assert ask(4) != first  # a day more: a new value, a new token
    assert count(conn, "select count(*) from tokens where token_type = 'set_time'") == 2
