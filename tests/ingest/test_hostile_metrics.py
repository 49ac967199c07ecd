"""The device API door (OpenPAYGO Metrics, ``POST /dd``) under hostile input, with the real database:
whatever the bytes, the answer is 201 or a 4xx with the reason, never an exception (a 500), and
every refusal is a dead letter holding the bytes sent. Hypothesis feeds the handler random bytes,
random JSON and requests signed with the unit's own key whose values are extreme."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from openpaygo.metrics_shared import OpenPAYGOMetricsShared

from backoffice.config import Settings
from ingest import openpaygo_metrics
from ingest.device_api import create_device_app
from tests.support import count, lamp_contract
from tests.support.fuzz import record

SERIAL = "DD-1"
ANY_TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"]), st.just("\x00")), max_size=30)
NUMBERS = st.one_of(st.floats(), st.floats(-300, 300), st.integers(-(2**70), 2**70), st.integers(-200, 5000))
LEAF = st.one_of(st.none(), st.booleans(), NUMBERS, ANY_TEXT)
JSON = st.recursive(LEAF, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ANY_TEXT, kids, max_size=4),
                    max_leaves=20)  # fmt: skip
NOW = int(time.time())
STAMPS = st.one_of(st.none(), st.integers(NOW - 11 * 86400, NOW + 600), st.integers(-(2**70), 2**70), st.floats(),
                   ANY_TEXT)  # fmt: skip
COUNTS = st.one_of(st.none(), st.integers(0, 10**6), st.integers(-(2**70), 2**70), st.booleans(), ANY_TEXT)
STEP = st.one_of(
    st.fixed_dictionaries({}, optional={"timestamp": STAMPS, "batt_v": NUMBERS, "soc": NUMBERS, "pv_wh": NUMBERS,
                                        "load_wh": NUMBERS, "batt_temp_c": NUMBERS, "relative_time": NUMBERS}),
    st.lists(NUMBERS | st.none(), max_size=6),
    JSON,
)  # fmt: skip


@pytest.fixture
def key(settings: Settings, conn: psycopg.Connection) -> str:
    _, unit_key, _ = lamp_contract(conn, settings.secret_key, SERIAL, "Zawadi", installed_days_ago=10)
    conn.commit()
    return unit_key


# Within the ranges, at their edges: what a good unit may send.
GOOD_STEP = st.fixed_dictionaries(
    {"timestamp": st.integers(NOW - 9 * 86400, NOW)},
    optional={"batt_v": st.floats(0, 100), "soc": st.floats(0, 1), "pv_wh": st.floats(0, 100000),
              "load_wh": st.floats(0, 100000), "batt_temp_c": st.floats(-40, 120)},
)  # fmt: skip
GOOD_TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=32)


@st.composite
def signed_requests(draw: st.DrawFn, key: str) -> bytes:
    """A request of the unit, signed with its key (when the method can sign what it carries): half
    of them with plausible values at the edges of their ranges, half with anything at all."""
    good = draw(st.booleans())
    body: dict[str, Any] = {"serial_number": SERIAL if good else draw(st.just(SERIAL) | ANY_TEXT)}
    fields = {"request_count": st.integers(1, 2**63 - 1) if good else COUNTS,
              "timestamp": st.none() | st.integers(NOW - 86400, NOW) if good else STAMPS,
              "data_collection_timestamp": st.none() if good else STAMPS,
              "data_format_id": st.just(1) if good else st.one_of(st.just(1), JSON)}  # fmt: skip
    for name, values in fields.items():
        value = draw(values)
        if value is not None:
            body[name] = value
    data = {"token_count": st.integers(0, 1000), "firmware_version": GOOD_TEXT} if good else {
        "token_count": COUNTS, "firmware_version": ANY_TEXT | NUMBERS}  # fmt: skip
    body["data"] = draw(st.fixed_dictionaries(data) if good else st.fixed_dictionaries(data) | JSON)
    body["historical_data"] = draw(st.lists(GOOD_STEP if good else STEP, max_size=4))
    method = draw(st.sampled_from(["ca", "da", "ra"] if good else ["sa", "ta", "ca", "da", "ra"]))
    try:
        body["auth"] = OpenPAYGOMetricsShared.generate_request_signature_from_data(body, method, key)
    except (ValueError, TypeError, AttributeError, UnicodeEncodeError):  # what the method cannot sign
        body["auth"] = method + draw(ANY_TEXT)
    raw = json.dumps(body, allow_nan=True, ensure_ascii=draw(st.booleans()))
    return raw.encode("utf-8", "surrogatepass")


def test_any_request_is_answered_200_or_4xx_and_every_refusal_is_a_dead_letter(
    settings: Settings, conn: psycopg.Connection, key: str
) -> None:
    outcomes: Counter[str] = Counter()

    @hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.binary(max_size=300), st.builds(lambda v: json.dumps(v, allow_nan=True).encode(), JSON),
                     signed_requests(key)))  # fmt: skip
    def check(raw: bytes) -> None:
        with conn.transaction(force_rollback=True):
            answer = openpaygo_metrics.handle(conn, raw, settings.secret_key)
            stored = conn.execute("select reason, payload from ingest_rejects").fetchall()
        outcomes[str(answer.status)] += 1
        assert answer.status in (201, 400, 401, 403, 404, 413), answer
        if answer.status == 201:
            assert stored == []
        else:
            assert [(r, bytes(p)) for r, p in stored] == [(answer.body["error"], raw)]

    check()
    print(f"\nMetrics handler: {dict(outcomes)}")  # noqa: T201 - the count of inputs tried, shown with -s
    record("OpenPAYGO Metrics handler, random and signed requests", sum(outcomes.values()), outcomes)
    assert outcomes["201"] > 0 and outcomes["400"] > 0 and outcomes["403"] > 0


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_device_app(settings)) as c:
        yield c


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"sn": "DD-1\\u0000", "a": "ra0", "rc": 1}', 400),  # NUL (PostgreSQL text refuses it)
        (b'{"sn": "DD-1\\ud800", "a": "ra0", "rc": 1}', 400),  # a lone surrogate (UTF-8 cannot encode it)
        (b'{"sn": 7, "a": "ra0", "rc": 1}', 400),
        (b'{"sn": "DD-1", "a": "ra0", "rc": 9223372036854775808}', 400),  # beyond bigint
        (b'{"sn": "DD-1", "a": "ra0", "ts": 1e300}', 400),
        (b"[" * 100_000 + b"]" * 100_000, 413),
        (b"[" * 20_000 + b"]" * 20_000, 400),  # deeper than the parser goes
        (b'{"sn": "DD-1", "a": "ra0", "rc": 1, "hd": [' + b"[1]," * 600 + b"[1]]}", 400),  # too many steps
        ('{"sn": "DD-1", "a": "ra0"}'.encode("utf-16"), 400),
        (b'{"sn": "NOPE", "a": "ra00", "rc": 1}', 404),
    ],
)
def test_hostile_bodies_get_a_4xx_with_the_reason(
    client: TestClient, conn: psycopg.Connection, key: str, body: bytes, status: int
) -> None:
    answer = client.post("/dd", content=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]
    assert count(conn, "select count(*) from ingest_rejects") == 1
