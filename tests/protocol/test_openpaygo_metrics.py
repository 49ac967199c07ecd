"""The Metrics wire format on its own: a request's values named through its data format and each
historical step dated as the specification says; CBOR and JSON decoding; data formats checked."""

from __future__ import annotations

import json
from typing import Any

import cbor2
import pytest

from protocol import ProtocolError
from protocol.openpaygo_metrics import DataFormat, check_format, parse_request, resolve

T = 1_700_000_000


def _resolve(body: dict[str, Any], fmt: DataFormat | None, received: int = T) -> list[tuple[int, dict[str, Any]]]:
    request = parse_request(json.dumps({"sn": "A1", "a": "ra00", **body}).encode())
    return resolve(request, fmt, received)[1]


ORDER = DataFormat(None, ("token_count", "tampered"), ("v", "i", "timestamp"), 60)


def test_undated_steps_with_a_positive_interval_end_at_the_request_time() -> None:
    steps = _resolve({"ts": T, "hd": [[1], [2], [3]]}, ORDER)
    assert steps == [(T - 120, {"v": 1}), (T - 60, {"v": 2}), (T, {"v": 3})]


def test_a_dated_step_anchors_the_undated_ones_before_it_and_after_it() -> None:
    steps = _resolve({"ts": T, "hd": [[1], [2, None, T - 600], [3], {"2": T - 100, "0": 4}]}, ORDER)
    assert [s for s, _ in steps] == [T - 660, T - 600, T - 540, T - 100]
    assert steps[3][1] == {"v": 4}  # index keys name variables by their position


def test_a_negative_interval_means_newest_first() -> None:
    fmt = DataFormat(None, (), ("v",), -300)
    assert [s for s, _ in _resolve({"ts": T, "hd": [[1], [2], [3]]}, fmt)] == [T, T - 300, T - 600]


def test_relative_time_counts_from_the_step_before_and_the_reference() -> None:
    fmt = DataFormat(None, (), ("v", "relative_time"), None)
    steps = _resolve({"dct": T - 50, "ts": T, "hd": [[1, -100], [2, 30], [3, -10]]}, fmt)
    assert [s for s, _ in steps] == [T - 150, T - 120, T - 130]  # from data_collection_timestamp


def test_without_time_or_interval_only_the_first_step_is_dated_by_the_request() -> None:
    fmt = DataFormat(None, (), ("v",), None)
    assert _resolve({"hd": [[1]]}, fmt, received=T + 5) == [(T + 5, {"v": 1})]  # received time: no ts
    with pytest.raises(ProtocolError, match="historical step 1: no timestamp"):
        _resolve({"hd": [[1], [2]]}, fmt)


def test_values_beyond_the_format_are_refused() -> None:
    with pytest.raises(ProtocolError, match="more values than the data format names"):
        _resolve({"hd": [[1, 2, 3, 4]]}, ORDER)
    with pytest.raises(ProtocolError, match="index 7 is not in the data format"):
        _resolve({"hd": [{"7": 1}]}, ORDER)


def test_condensed_data_names_and_cbor() -> None:
    body = {"sn": "A1", "a": "ra00", "rc": 3, "d": [5, True], "hd": [[1]]}
    for raw, kind in (
        (json.dumps(body).encode(), None),
        (cbor2.dumps(body), "application/cbor"),
        (cbor2.dumps(body), "cbor"),
    ):
        request = parse_request(raw, kind)
        assert request.condensed and request.request_count == 3
        assert resolve(request, ORDER, T)[0] == {"token_count": 5, "tampered": True}
    with pytest.raises(ProtocolError, match="is not Metrics data"):
        parse_request(cbor2.dumps(body | {"d": b"\x00"}), "application/cbor")
    with pytest.raises(ProtocolError, match="a key is not text"):
        parse_request(cbor2.dumps(body | {"d": {1: 2}}), "application/cbor")


@pytest.mark.parametrize(
    ("fmt", "why"),
    [
        ({"historical_data_order": ["0"]}, "not a variable name"),
        ({"historical_data_order": ["v", "v"]}, "names a variable twice"),
        ({"historical_data_interval": 0}, "historical_data_interval"),
        ({"variables": {"v": {"type": "complex"}}}, "type must be one of"),
        ({"variables": {"v": {"aggregation_method": "median"}}}, "aggregation_method"),
        ({"variables": {"v": {"column": "secret"}}}, "column must be one of"),
        ({"variables": {"v": {"scale_factor": 0}}}, "scale_factor"),
        ({"colour": "red"}, "unknown fields"),
    ],
)
def test_data_formats_are_checked(fmt: dict[str, Any], why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        check_format(fmt, None)


def test_the_specifications_order_objects_are_accepted() -> None:
    fmt = check_format({"data_order": {"2": "firmware_version", "1": "token_count"}, "variables": {
        "battery_voltage": {"name": "Battery", "scale_factor": 0.01}, "w": {"column": "pv_w"}}}, 9)  # fmt: skip
    assert fmt.data_order == ("token_count", "firmware_version")
    assert fmt.column("battery_voltage") == "batt_v" and fmt.column("w") == "pv_w" and fmt.column("fan") is None
    assert fmt.scale("battery_voltage") == 0.01
