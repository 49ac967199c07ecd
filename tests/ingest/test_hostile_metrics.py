"""The device API door (OpenPAYGO Metrics, ``POST /dd``) under hostile input, with the real database:
whatever the bytes, the answer is 201 or a 4xx with the reason, never an exception (a 500), and
every refusal is a dead letter holding the bytes sent. Hypothesis feeds the handler random bytes,
random JSON and requests signed with the unit's own key whose values are extreme."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import cbor2
import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from openpaygo.metrics_shared import OpenPAYGOMetricsShared

from backoffice import clock
from backoffice.config import Settings
from ingest import openpaygo_metrics
from ingest.device_api import create_device_app
from tests.support import count, lamp_contract
from tests.support.fuzz import record
from tests.support.staff import api_token

SERIAL = "DD-1"
ANY_TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"]), st.just("\x00")), max_size=30)
NUMBERS = st.one_of(st.floats(), st.floats(-300, 300), st.integers(-(2**70), 2**70), st.integers(-200, 5000))
LEAF = st.one_of(st.none(), st.booleans(), NUMBERS, ANY_TEXT)
JSON = st.recursive(LEAF, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ANY_TEXT, kids, max_size=4),
                    max_leaves=20)  # fmt: skip
NOW = int(clock.utc_now().timestamp())
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


# ---- issue 17: CBOR, data formats, accessories and the integration doors under hostile input

CBOR_LEAF = st.one_of(LEAF, st.binary(max_size=8), st.integers(-(2**80), 2**80))
CBOR_VALUES = st.recursive(
    CBOR_LEAF,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ANY_TEXT | st.integers(0, 9), kids, max_size=4),
    max_leaves=20,
)
FORMAT_OBJECTS = st.fixed_dictionaries(
    {},
    optional={"data_order": st.lists(ANY_TEXT, max_size=4) | JSON,
              "historical_data_order": st.lists(ANY_TEXT, max_size=6) | JSON,
              "historical_data_interval": NUMBERS | st.none() | ANY_TEXT,
              "variables": st.dictionaries(ANY_TEXT, st.fixed_dictionaries({}, optional={
                  "name": ANY_TEXT, "type": st.sampled_from(["float", "integer", "gps", "x"]) | JSON,
                  "scale_factor": NUMBERS | st.booleans(), "column": st.sampled_from(["batt_v", "soc", "locked", "x"]),
                  "aggregation_method": st.sampled_from(["sum", "max", "median"])}), max_size=3) | JSON},
)  # fmt: skip


@st.composite
def signed_with_formats(draw: st.DrawFn, key: str) -> bytes:
    """Requests of the unit signed with its key carrying an inline data format, index keys,
    relative times and accessories (some of which are the unit itself or unknown)."""
    fmt = draw(FORMAT_OBJECTS)
    steps = draw(st.lists(st.one_of(st.lists(NUMBERS | st.none() | st.booleans(), max_size=6), st.dictionaries(
        st.sampled_from(["0", "1", "2", "9", "relative_time", "timestamp", "batt_v", "fan"]), NUMBERS | STAMPS,
        max_size=4)), max_size=4))  # fmt: skip
    body: dict[str, Any] = {"sn": SERIAL, "rc": draw(st.integers(1, 2**40)), "dfo": fmt, "hd": steps,
                            "d": draw(st.lists(NUMBERS | ANY_TEXT, max_size=3) | JSON)}  # fmt: skip
    try:
        body["a"] = OpenPAYGOMetricsShared.generate_request_signature_from_data(
            {"serial_number": SERIAL, "request_count": body["rc"], "data": body["d"], "historical_data": steps}, "ra",
            key)  # fmt: skip
    except (ValueError, TypeError, AttributeError, UnicodeEncodeError):
        body["a"] = "ra" + draw(ANY_TEXT)
    if draw(st.booleans()):
        body["acc"] = draw(st.lists(st.fixed_dictionaries({"sn": st.sampled_from([SERIAL, "NOPE"]) | ANY_TEXT,
                                                           "a": st.just("ra00") | ANY_TEXT, "rc": COUNTS,
                                                           "hd": st.lists(STEP, max_size=2)}), max_size=3))  # fmt: skip
    raw = json.dumps(body, allow_nan=True)
    return raw.encode("utf-8", "surrogatepass")


def test_cbor_formats_and_accessories_are_answered_201_or_4xx(
    settings: Settings, conn: psycopg.Connection, key: str
) -> None:
    outcomes: Counter[str] = Counter()

    @hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.builds(lambda v: ("cbor", cbor2.dumps(v)), CBOR_VALUES),
                     st.tuples(st.just("cbor"), st.binary(max_size=200)),
                     st.builds(lambda raw: ("json", raw), signed_with_formats(key))))  # fmt: skip
    def check(case: tuple[str, bytes]) -> None:
        kind, raw = case
        with conn.transaction(force_rollback=True):
            answer = openpaygo_metrics.handle(conn, raw, settings.secret_key, content_type=f"application/{kind}")
            refused = conn.execute("select count(*) from ingest_rejects where payload = %s", (raw,)).fetchone()
        outcomes[str(answer.status)] += 1
        assert answer.status in (201, 400, 401, 403, 404, 413), answer
        if answer.status != 201:
            assert refused is not None and refused[0] >= 1

    check()
    record("OpenPAYGO Metrics handler, CBOR, inline formats and accessories", sum(outcomes.values()), outcomes)
    assert outcomes["201"] > 0 and outcomes["400"] > 0


def test_the_integration_doors_never_answer_500(settings: Settings, client: TestClient, key: str) -> None:
    admin = api_token(settings.database_url, "admin")
    reader = api_token(settings.database_url, "viewer")
    outcomes: Counter[str] = Counter()

    @hypothesis_settings(max_examples=150, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(FORMAT_OBJECTS | JSON, st.sampled_from(["application/json", "application/cbor"]),
           st.none() | st.integers(-(2**70), 2**70))  # fmt: skip
    def register(fmt: Any, kind: str, product: int | None) -> None:
        raw = (
            cbor2.dumps(fmt)
            if kind.endswith("cbor")
            else json.dumps(fmt, allow_nan=True).encode("utf-8", "surrogatepass")
        )
        params = {"product_id": product} if product is not None else None
        answer = client.post("/data_format", content=raw, headers=admin | {"content-type": kind}, params=params)
        outcomes[str(answer.status_code)] += 1
        assert answer.status_code in (201, 400, 404, 422), answer.text

    register()
    windows = [("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"), ("2026-01-01", "2026-01-02"), ("x", "\x00")]
    cases = [{"serial_number": SERIAL, "from_datetime": f, "to_datetime": t} for f, t in windows]
    cases += [{"serial_number": s, "from_datetime": "2026-01-01T00:00Z", "to_datetime": "2026-01-02T00:00Z"}
              for s in ("x" * 65, "NOPE")]  # fmt: skip
    for params in cases:
        answer = client.get("/device_data", params=params, headers=reader)
        outcomes[str(answer.status_code)] += 1
        assert answer.status_code in (200, 400, 404, 422), answer.text
    raw = client.get(
        "/device_data?serial_number=%ED%A0%80&from_datetime=2026-01-01T00:00Z&to_datetime=x", headers=reader
    )
    assert raw.status_code in (400, 404, 422), raw.text  # a lone surrogate, percent-encoded
    record("OpenPAYGO Metrics integration doors (data formats, device data)", sum(outcomes.values()), outcomes)
    assert outcomes["201"] > 0 and outcomes["400"] + outcomes["422"] > 0


def _shared_steps(width: int) -> bytes:
    """A request whose steps are one list, each ``width`` references to one list of ``width``
    numbers: a few hundred bytes of CBOR (tags 28/29) that a walk expands to ``width**3`` values."""
    numbers = list(range(width))
    step = [numbers] * width
    body = {"sn": SERIAL, "a": "ra00", "rc": 1, "hd": [step] * width}
    return bytes(cbor2.dumps(body, value_sharing=True))


def test_cbor_shared_references_are_refused_before_they_are_expanded(
    client: TestClient, conn: psycopg.Connection, key: str
) -> None:
    """Issue 17 review: 2 kB of shared references made the checks walk the same list millions of times."""
    raw = _shared_steps(200)  # 8 million values once expanded
    assert len(raw) < 2048
    answer = client.post("/dd", content=raw, headers={"content-type": "application/cbor"})
    assert answer.status_code == 400, answer.text
    assert "a list or object is shared (CBOR shared references, tags 28/29" in answer.json()["error"]
    assert [(r, bytes(p)) for r, p in conn.execute("select reason, payload from ingest_rejects")] == [
        (answer.json()["error"], raw)
    ]
    # A cycle (a list that holds itself) is refused the same way.
    cycle = bytes.fromhex("a262736e6444442d316268648181d81c81d81d00")  # {"sn": "DD-1", "hd": [[c]]}, c = [c]
    looped = client.post("/dd", content=cycle, headers={"content-type": "application/cbor"})
    assert looped.status_code == 400 and "is shared" in looped.json()["error"], looped.text


def test_a_request_of_too_many_values_is_refused(client: TestClient, key: str) -> None:
    raw = bytes(cbor2.dumps({"sn": SERIAL, "a": "ra00", "rc": 1, "hd": [[0] * 50 for _ in range(500)]}))
    answer = client.post("/dd", content=raw, headers={"content-type": "application/cbor"})
    assert answer.status_code == 400 and "more than 20000 values" in answer.json()["error"], answer.text
