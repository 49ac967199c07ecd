"""The OpenPAYGO Metrics data formats our units speak (spec v1.0.0-rc1, ``openpaygo/metrics``), and
the shape a request must have before its signature is even checked.

A data format names the order of a request's values, so that a condensed request can leave the
names out. Historical steps: battery voltage, state of charge, PV energy and load energy over the
step (Wh), battery temperature; one step per 20 minutes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from protocol.messages import INT8_MAX, MAX_READINGS_PER_MESSAGE, check_text
from protocol.topics import ProtocolError

DEFAULT_DATA_FORMAT_ID = 1
DATA_FORMATS: dict[int, dict[str, Any]] = {
    1: {
        "id": 1,
        "data_order": ["token_count", "firmware_version"],
        "historical_data_order": ["batt_v", "soc", "pv_wh", "load_wh", "batt_temp_c"],
        "historical_data_interval": 1200,
    }
}

# A request larger than this is refused unread (500 simple steps are about 60 kB).
MAX_REQUEST_BYTES = 64 * 1024
MAX_HISTORICAL_STEPS = MAX_READINGS_PER_MESSAGE
MAX_DEPTH = 6  # request > historical_data > step > value; deeper is not a Metrics request
# Seconds since 1970 beyond this (year 2106) are no clock's.
MAX_TIMESTAMP = 2**32 - 1

# What each auth method's signature covers besides the serial number (openpaygo's
# generate_request_signature_from_data): only a signed value can be trusted to move the replay
# check forward. Simple auth ("sa") signs nothing else, so it is refused unless a product allows it.
SIGNED: dict[str, frozenset[str]] = {
    "sa": frozenset(),
    "ta": frozenset({"timestamp"}),
    "ca": frozenset({"request_count"}),
    "da": frozenset({"timestamp", "request_count"}),
    "ra": frozenset({"timestamp", "request_count"}),
}
SIMPLE_AUTH = "sa"
_CONDENSED = {"sn": "serial_number", "ts": "timestamp", "a": "auth", "rc": "request_count",
              "dtc": "data_collection_timestamp", "df": "data_format_id", "dfo": "data_format", "d": "data",
              "hd": "historical_data", "acc": "accessories"}  # fmt: skip


@dataclass(frozen=True)
class MetricsRequest:
    """What the platform reads of a request before checking it (the openpaygo library reads the
    rest from ``text``). A count or timestamp of 0 is absent: no signature covers it."""

    text: str
    serial: str
    auth: str
    method: str  # the auth method, one of SIGNED
    request_count: int | None
    timestamp: int | None
    data_collection_timestamp: int | None
    data_format_id: int

    def replay_values(self) -> tuple[int | None, int | None]:
        """(request count, timestamp) that the replay check may use: those the signature covers, or
        both as sent under simple auth (which covers neither)."""
        signed = SIGNED[self.method] if self.method != SIMPLE_AUTH else SIGNED["da"]
        return (
            self.request_count if "request_count" in signed else None,
            self.timestamp if "timestamp" in signed else None,
        )


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_values(value: object, depth: int = 0) -> None:
    """Every string (keys too) storable as text, every number finite, nesting shallow."""
    if depth > MAX_DEPTH:
        raise ProtocolError(f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, str):
        _text(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ProtocolError("a number is out of range")
    elif isinstance(value, dict):
        for key, item in value.items():
            _text(key)
            _check_values(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_values(item, depth + 1)


def _text(value: str) -> None:
    try:
        check_text(value)
    except ValueError as err:
        raise ProtocolError(f"a string {err}") from None


def _whole(request: dict[str, Any], name: str, maximum: int) -> int | None:
    value = request.get(name)
    if value is None or value == 0 and not isinstance(value, bool):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise ProtocolError(f"{name} must be a whole number from 1 to {maximum}")
    return value


def parse_request(raw: bytes) -> MetricsRequest:
    """Check a request's bytes: UTF-8 JSON (no NaN, NUL or lone surrogate anywhere), an object with a
    serial number, an auth string of a known method, counts and timestamps that are whole numbers
    in range, a known data format and at most MAX_HISTORICAL_STEPS steps. ProtocolError otherwise."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise ProtocolError(f"request of {len(raw)} bytes exceeds {MAX_REQUEST_BYTES}")
    try:
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise ProtocolError("not UTF-8") from None
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"invalid JSON: {err}") from None
    if not isinstance(body, dict):
        raise ProtocolError("expected a JSON object")
    _check_values(body)
    request: dict[str, Any] = {_CONDENSED.get(k) or k: v for k, v in body.items()}
    serial = request.get("serial_number")
    if not isinstance(serial, str) or not 1 <= len(serial) <= 64:
        raise ProtocolError("serial_number must be a string of 1 to 64 characters")
    auth = request.get("auth")
    if not isinstance(auth, str) or not 2 < len(auth) <= 64 or auth[:2] not in SIGNED:
        raise ProtocolError(f"auth must start with one of {', '.join(SIGNED)}")
    fmt = request.get("data_format_id")
    if fmt is None:
        fmt = DEFAULT_DATA_FORMAT_ID
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt not in DATA_FORMATS:
        raise ProtocolError(f"unknown data_format_id {fmt!r}")
    if not isinstance(request.get("data") or {}, dict | list):
        raise ProtocolError("data must be an object or a list")
    steps = request.get("historical_data") or []
    if not isinstance(steps, list) or not all(isinstance(s, dict | list) for s in steps):
        raise ProtocolError("historical_data must be a list of objects or lists")
    if len(steps) > MAX_HISTORICAL_STEPS:
        raise ProtocolError(f"more than {MAX_HISTORICAL_STEPS} historical steps")
    return MetricsRequest(
        text=text,
        serial=serial,
        auth=auth,
        method=auth[:2],
        request_count=_whole(request, "request_count", INT8_MAX),
        timestamp=_whole(request, "timestamp", MAX_TIMESTAMP),
        data_collection_timestamp=_whole(request, "data_collection_timestamp", MAX_TIMESTAMP),
        data_format_id=int(fmt),
    )
