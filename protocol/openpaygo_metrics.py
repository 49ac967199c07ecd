"""OpenPAYGO Metrics (``openpaygo/metrics`` Specifications.md, v1.0 draft) on the wire: the shape a
request must have before its signature is even checked, data formats, how a request's values and
times are resolved, and the server's answer.

- A request is JSON or CBOR (``content-type: application/cbor``), simple or condensed (``sn``,
  ``d``...), either form decoded into the simple key names (``MetricsRequest.body``).
- A data format (the specification's Data Format Object) names the order of a condensed request's
  values, the interval between undated historical steps (negative: the newest first) and each
  variable's description; ``check_format`` checks one (registered, or inline as ``data_format``).
- ``resolve`` turns a request's data and historical data into named values with a timestamp each,
  as the specification says: an explicit ``timestamp`` wins; ``relative_time`` counts from the step
  before (the first from the request's reference time: ``data_collection_timestamp``, else
  ``timestamp``, else the time it is received); an undated step is ``historical_data_interval``
  after the one before. With a positive interval the undated steps before the first dated one end
  at it (or, if none is dated, the newest ends at the reference time): a step is never dated ahead
  of the request that carries it. (The openpaygo library dates the first step at the reference time
  and the later ones after it, in the future.)
- Signatures are the openpaygo library's (SipHash-2-4 with the unit's key).
"""

from __future__ import annotations

import hmac
import json
import math
from dataclasses import dataclass, field
from typing import Any

import cbor2
from openpaygo.metrics_shared import OpenPAYGOMetricsShared

from protocol.messages import INT8_MAX, MAX_READINGS_PER_MESSAGE, check_text
from protocol.topics import ProtocolError

DEFAULT_DATA_FORMAT_ID = 1
# The format every unit of this platform speaks (also row 1 of metrics_data_formats, migration 0030).
DATA_FORMATS: dict[int, dict[str, Any]] = {
    1: {
        "id": 1,
        "data_order": ["token_count", "firmware_version"],
        "historical_data_order": ["batt_v", "soc", "pv_wh", "load_wh", "batt_temp_c"],
        "historical_data_interval": 1200,
    },
    # The simulator's Metrics units: every column of a reading, each step dated (a store-and-forward
    # buffer may span an outage).
    2: {
        "id": 2,
        "data_order": ["token_count", "firmware_version", "tampered"],
        "historical_data_order": [
            "batt_v",
            "batt_a",
            "soc",
            "batt_temp_c",
            "pv_v",
            "pv_w",
            "pv_wh",
            "load_wh",
            "credit_s",
            "locked",
            "rssi",
            "timestamp",
        ],  # fmt: skip
    },
}

# A request larger than this is refused unread (500 simple steps are about 60 kB).
MAX_REQUEST_BYTES = 64 * 1024
MAX_HISTORICAL_STEPS = MAX_READINGS_PER_MESSAGE
MAX_ACCESSORIES = 16
MAX_DEPTH = 8  # request > accessories > accessory > historical_data > step > value (gps: a list)
# Seconds since 1970 beyond this (year 2106) are no clock's.
MAX_TIMESTAMP = 2**32 - 1
MAX_INTERVAL = 31 * 86400  # a historical_data_interval or relative_time beyond a month is no device's
MAX_VARIABLES = 64
# Values (numbers, strings, lists, objects) in one request: 500 steps of 12 values are about 7,000.
MAX_NODES = 20_000

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
CONDENSED_NAMES: dict[str, str] = dict(OpenPAYGOMetricsShared.CONDENSED_KEY_NAMES)
_SIMPLE: dict[str, str] = {v: k for k, v in CONDENSED_NAMES.items()} | {"dct": "data_collection_timestamp"}
CBOR = "application/cbor"
JSON = "application/json"

VARIABLE_TYPES = ("text", "integer", "float", "bool", "gps")
AGGREGATIONS = ("average", "latest", "sum", "min", "max")
# The telemetry columns a format's variable may fill (protocol.messages.Reading's fields), and the
# names (ours and the specification's examples) that fill one without saying so ("column").
COLUMNS = ("batt_v", "batt_a", "soc", "batt_temp_c", "pv_v", "pv_w", "pv_wh", "load_wh", "credit_s", "locked",
           "rssi", "fw")  # fmt: skip
STANDARD_NAMES: dict[str, str] = {c: c for c in COLUMNS} | {
    "battery_voltage": "batt_v",
    "battery_current": "batt_a",
    "state_of_charge": "soc",
    "battery_temperature": "batt_temp_c",
    "temperature": "batt_temp_c",
    "panel_voltage": "pv_v",
    "pv_voltage": "pv_v",
    "panel_power": "pv_w",
    "pv_power": "pv_w",
    "panel_energy": "pv_wh",
    "pv_energy": "pv_wh",
    "load_energy": "load_wh",
    "output_energy": "load_wh",
    "credit_seconds": "credit_s",
    "firmware_version": "fw",
    "signal_strength": "rssi",
}
TIME_KEYS = ("timestamp", "relative_time")


@dataclass(frozen=True)
class DataFormat:
    """A checked Data Format Object; ``id`` None for one sent inline."""

    id: int | None
    data_order: tuple[str, ...] = ()
    historical_data_order: tuple[str, ...] = ()
    historical_data_interval: int | None = None
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The Data Format Object (what a device's openpaygo request builder takes)."""
        out: dict[str, Any] = {"data_order": list(self.data_order),
                               "historical_data_order": list(self.historical_data_order)}  # fmt: skip
        if self.id is not None:
            out["id"] = self.id
        if self.historical_data_interval is not None:
            out["historical_data_interval"] = self.historical_data_interval
        if self.variables:
            out["variables"] = self.variables
        return out

    def column(self, name: str) -> str | None:
        """The telemetry column this variable fills, or None (kept in ``extra``)."""
        declared = self.variables.get(name, {}).get("column")
        return declared if declared in COLUMNS else STANDARD_NAMES.get(name)

    def scale(self, name: str) -> float | None:
        factor = self.variables.get(name, {}).get("scale_factor")
        return None if factor is None else float(factor)


@dataclass(frozen=True)
class MetricsRequest:
    """What the platform reads of a request before checking it. A count or timestamp of 0 is absent:
    no signature covers it."""

    body: dict[str, Any]  # simple key names (accessories left out)
    condensed: bool  # the request used the condensed names (answered the same way)
    serial: str
    auth: str | None  # None: no auth field (a JWT-authenticated request)
    method: str | None  # the auth method, one of SIGNED
    request_count: int | None
    timestamp: int | None
    data_collection_timestamp: int | None
    data_format_id: int | None  # None: inline ``data_format`` or none at all
    inline_format: DataFormat | None
    accessories: tuple[MetricsRequest, ...] = ()

    def replay_values(self) -> tuple[int | None, int | None]:
        """(request count, timestamp) that the replay check may use: those the signature covers, or
        both as sent under simple auth or a JWT (which cover neither)."""
        if self.method is None or self.method == SIMPLE_AUTH:
            signed = SIGNED["da"]
        else:
            signed = SIGNED[self.method]
        return (
            self.request_count if "request_count" in signed else None,
            self.timestamp if "timestamp" in signed else None,
        )

    def signed_with(self, key: str) -> bool:
        """Whether the auth string is the request's signature with ``key`` (constant-time compare)."""
        if self.auth is None or self.method is None:
            return False
        try:
            expected = OpenPAYGOMetricsShared.generate_request_signature_from_data(self.body, self.method, key)
        except (ValueError, KeyError, TypeError):  # e.g. timestamp auth without a timestamp: not signed
            return False
        return hmac.compare_digest(str(expected).encode(), self.auth.encode())


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_values(value: object) -> None:
    """Only what JSON holds (CBOR's tags, bytes and non-text keys are not Metrics); every string (keys
    too) storable as text, every number finite and within bigint, nesting shallow; no list or object
    met twice (CBOR's shared references, tags 28/29, which cbor2 decodes itself: a 2 kB body could
    make every later walk expand one list millions of times) and at most MAX_NODES values in all."""
    seen: set[int] = set()  # ids of the lists and objects met (all alive: the root holds them)
    nodes = 0

    def walk(value: object, depth: int) -> None:
        nonlocal nodes
        nodes += 1
        if nodes > MAX_NODES:
            raise ProtocolError(f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise ProtocolError(f"nested deeper than {MAX_DEPTH}")
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, str):
            _text(value)
        elif isinstance(value, int):
            if not -(2**63) <= value <= INT8_MAX:
                raise ProtocolError("a number is out of range")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ProtocolError("a number is out of range")
        elif isinstance(value, dict | list):
            if id(value) in seen:
                raise ProtocolError("a list or object is shared (CBOR shared references, tags 28/29, are not Metrics)")
            seen.add(id(value))
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise ProtocolError("a key is not text")
                    _text(key)
                    walk(item, depth + 1)
            else:
                for item in value:
                    walk(item, depth + 1)
        else:
            raise ProtocolError(f"a value of type {type(value).__name__} is not Metrics data")

    walk(value, 0)


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


def is_cbor(content_type: str | None) -> bool:
    """The specification's "application/cbor" or simply "cbor"."""
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in (CBOR, "cbor")


def decode(raw: bytes, content_type: str | None = None) -> Any:
    """The body as Python values: CBOR if the content type says so, else UTF-8 JSON (no NaN)."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise ProtocolError(f"request of {len(raw)} bytes exceeds {MAX_REQUEST_BYTES}")
    if is_cbor(content_type):
        try:
            return cbor2.loads(raw)
        except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, MemoryError) as err:
            raise ProtocolError(f"invalid CBOR: {str(err)[:200]}") from None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise ProtocolError("not UTF-8") from None
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"invalid JSON: {str(err)[:200]}") from None


def encode(body: dict[str, Any], content_type: str | None) -> bytes:
    """An answer in the request's encoding (CBOR or compact JSON)."""
    if is_cbor(content_type):
        return bytes(cbor2.dumps(body))
    return OpenPAYGOMetricsShared.convert_to_metrics_json(body).encode()


def parse_request(raw: bytes, content_type: str | None = None, *, auth_required: bool = True) -> MetricsRequest:
    """Check a request's bytes: JSON or CBOR (no NaN, NUL or lone surrogate anywhere), an object with a
    serial number, an auth string of a known method (unless ``auth_required`` is False: a
    JWT-authenticated request; an accessory always needs its own), counts and timestamps that are
    whole numbers in range, a data format id or an inline data format (not both), at most
    MAX_HISTORICAL_STEPS steps and MAX_ACCESSORIES accessories, each itself a request.
    ProtocolError otherwise."""
    body = decode(raw, content_type)
    _check_values(body)
    return parse_object(body, auth_required=auth_required)


def parse_object(raw_body: object, *, auth_required: bool = True, accessory: bool = False) -> MetricsRequest:
    """A decoded request object (or an accessory's, nested in one) checked as ``parse_request`` says."""
    if not isinstance(raw_body, dict):
        raise ProtocolError("expected an object")
    condensed = any(k in raw_body for k in ("sn", "a", "d", "hd", "df", "dfo", "rc", "ts"))
    body: dict[str, Any] = {_SIMPLE.get(k) or k: v for k, v in raw_body.items()}
    serial = body.get("serial_number")
    if not isinstance(serial, str) or not 1 <= len(serial) <= 64:
        raise ProtocolError("serial_number must be a string of 1 to 64 characters")
    auth = body.get("auth")
    if auth is None and not auth_required:
        method = None
    elif not isinstance(auth, str) or not 2 < len(auth) <= 64 or auth[:2] not in SIGNED:
        raise ProtocolError(f"auth must start with one of {', '.join(SIGNED)}")
    else:
        method = auth[:2]
    fmt_id = body.get("data_format_id")
    inline = body.get("data_format")
    if fmt_id is not None and inline is not None:
        raise ProtocolError("data_format and data_format_id cannot be both provided")
    if fmt_id is not None and (isinstance(fmt_id, bool) or not isinstance(fmt_id, int) or not 0 < fmt_id <= INT8_MAX):
        raise ProtocolError(f"unknown data_format_id {fmt_id!r}")
    inline_format = check_format(inline, None) if inline is not None else None
    if not isinstance(body.get("data") or {}, dict | list):
        raise ProtocolError("data must be an object or a list")
    steps = body.get("historical_data") or []
    if not isinstance(steps, list) or not all(isinstance(s, dict | list) for s in steps):
        raise ProtocolError("historical_data must be a list of objects or lists")
    if len(steps) > MAX_HISTORICAL_STEPS:
        raise ProtocolError(f"more than {MAX_HISTORICAL_STEPS} historical steps")
    if fmt_id is None and inline_format is None and _positional(body):
        fmt_id = DEFAULT_DATA_FORMAT_ID  # our own units' condensed requests name no format
    nested = body.pop("accessories", None) or []
    if accessory and nested:
        raise ProtocolError("an accessory cannot carry accessories")
    if not isinstance(nested, list) or len(nested) > MAX_ACCESSORIES:
        raise ProtocolError(f"accessories must be a list of at most {MAX_ACCESSORIES} requests")
    accessories = []
    for i, item in enumerate(nested):
        try:
            # Always signed, with the accessory's own key: no JWT or parent signature covers it.
            accessories.append(parse_object(item, auth_required=True, accessory=True))
        except ProtocolError as err:
            raise ProtocolError(f"accessory {i}: {err}") from None
    return MetricsRequest(
        body=body,
        condensed=condensed,
        serial=serial,
        auth=auth if method else None,
        method=method,
        request_count=_whole(body, "request_count", INT8_MAX),
        timestamp=_whole(body, "timestamp", MAX_TIMESTAMP),
        data_collection_timestamp=_whole(body, "data_collection_timestamp", MAX_TIMESTAMP),
        data_format_id=fmt_id,
        inline_format=inline_format,
        accessories=tuple(accessories),
    )


def _positional(body: dict[str, Any]) -> bool:
    """Whether the request holds values that only a data format can name (lists, index keys)."""
    if isinstance(body.get("data"), list):
        return True
    return any(isinstance(s, list) or any(k.isdigit() for k in s) for s in body.get("historical_data") or [])


def _order(value: object, name: str) -> tuple[str, ...]:
    """A data_order / historical_data_order: a list of names, or the specification's {"1": name} object."""
    if value is None:
        return ()
    if isinstance(value, dict):
        try:
            items = sorted((int(k), v) for k, v in value.items())
        except ValueError:
            raise ProtocolError(f"{name}: keys must be positions") from None
        value = [v for _, v in items]
    if not isinstance(value, list) or len(value) > MAX_VARIABLES:
        raise ProtocolError(f"{name} must be a list of at most {MAX_VARIABLES} names")
    for item in value:
        if not isinstance(item, str) or not 1 <= len(item) <= 64 or item.isdigit():
            raise ProtocolError(f"{name}: {item!r} is not a variable name (text, not a number)")
    if len(set(value)) != len(value):
        raise ProtocolError(f"{name} names a variable twice")
    return tuple(value)


def check_format(obj: object, format_id: int | None) -> DataFormat:
    """A Data Format Object checked: orders of variable names (never numbers: they would clash with
    indexes), an interval of whole seconds (not 0), variables described by the specification's
    Variable Type Object (plus "column": the telemetry column it fills). ProtocolError otherwise."""
    if not isinstance(obj, dict):
        raise ProtocolError("a data format must be an object")
    _check_values(obj)
    unknown = set(obj) - {"id", "data_order", "historical_data_order", "historical_data_interval", "variables"}
    if unknown:
        raise ProtocolError(f"data format: unknown fields {sorted(unknown)!r}")
    interval = obj.get("historical_data_interval")
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, int) or not 0 < abs(interval) <= MAX_INTERVAL
    ):
        raise ProtocolError(f"historical_data_interval must be whole seconds, not 0, at most {MAX_INTERVAL}")
    variables = obj.get("variables") or {}
    if not isinstance(variables, dict) or len(variables) > MAX_VARIABLES:
        raise ProtocolError(f"variables must be an object of at most {MAX_VARIABLES} variables")
    checked: dict[str, dict[str, Any]] = {}
    for name, spec in variables.items():
        checked[name] = _variable(name, spec)
    return DataFormat(
        id=format_id,
        data_order=_order(obj.get("data_order"), "data_order"),
        historical_data_order=_order(obj.get("historical_data_order"), "historical_data_order"),
        historical_data_interval=interval,
        variables=checked,
    )


def _variable(name: str, spec: object) -> dict[str, Any]:
    if not 1 <= len(name) <= 64 or name.isdigit():
        raise ProtocolError(f"variable {name!r}: a name is text of 1 to 64 characters, not a number")
    if not isinstance(spec, dict):
        raise ProtocolError(f"variable {name!r}: expected a Variable Type object")
    allowed = {"name", "type", "unit", "description", "scale_factor", "aggregation_method", "column"}
    if set(spec) - allowed:
        raise ProtocolError(f"variable {name!r}: unknown fields {sorted(set(spec) - allowed)!r}")
    for text in ("name", "unit", "description"):
        if text in spec and (not isinstance(spec[text], str) or len(spec[text]) > 500):
            raise ProtocolError(f"variable {name!r}: {text} must be text")
    if spec.get("type", "text") not in VARIABLE_TYPES:
        raise ProtocolError(f"variable {name!r}: type must be one of {', '.join(VARIABLE_TYPES)}")
    if spec.get("aggregation_method", "average") not in AGGREGATIONS:
        raise ProtocolError(f"variable {name!r}: aggregation_method must be one of {', '.join(AGGREGATIONS)}")
    factor = spec.get("scale_factor")
    if factor is not None and (isinstance(factor, bool) or not isinstance(factor, int | float) or factor == 0):
        raise ProtocolError(f"variable {name!r}: scale_factor must be a number other than 0")
    if "column" in spec and spec["column"] not in COLUMNS:
        raise ProtocolError(f"variable {name!r}: column must be one of {', '.join(COLUMNS)}")
    return dict(spec)


def _named(values: object, order: tuple[str, ...], where: str) -> dict[str, Any]:
    """A Device Data Array or Object as names: positions (or index keys) through ``order``."""
    if isinstance(values, list):
        if len(values) > len(order):
            raise ProtocolError(f"{where}: more values than the data format names")
        return {order[i]: v for i, v in enumerate(values) if v is not None}
    if not isinstance(values, dict):
        raise ProtocolError(f"{where}: expected an object or a list")
    named: dict[str, Any] = {}
    for key, value in values.items():
        if key.isdigit():
            if int(key) >= len(order):
                raise ProtocolError(f"{where}: index {key} is not in the data format")
            key = order[int(key)]
        if value is not None:
            named[key] = value
    return named


def _seconds(value: object, name: str, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"{where}: {name} {value!r} is not whole seconds")
    if not low <= value <= high or value != int(value):
        raise ProtocolError(f"{where}: {name} {value!r} is out of range")
    return int(value)


Steps = list[tuple[int, dict[str, Any]]]


def resolve(request: MetricsRequest, fmt: DataFormat | None, received_at: int) -> tuple[dict[str, Any], Steps]:
    """The request's data (named) and its historical steps as (timestamp, named values), oldest
    first in the order sent, each dated as the module docstring says. ProtocolError if a value
    cannot be named or a step cannot be dated."""
    fmt = fmt or DataFormat(None)
    data = {_SIMPLE.get(k, k): v for k, v in _named(request.body.get("data") or {}, fmt.data_order, "data").items()}
    reference = request.data_collection_timestamp or request.timestamp or received_at
    steps = [_named(s, fmt.historical_data_order, f"historical step {i}")
             for i, s in enumerate(request.body.get("historical_data") or [])]  # fmt: skip
    interval = fmt.historical_data_interval
    dated: Steps = []
    cursor = reference
    if interval is not None and interval > 0 and steps and not any(k in steps[0] for k in TIME_KEYS):
        # Oldest first: the undated run before the first dated step (or the newest) ends there.
        first_dated = next((i for i, s in enumerate(steps) if any(k in s for k in TIME_KEYS)), None)
        if first_dated is not None and "timestamp" in steps[first_dated]:
            end = _seconds(steps[first_dated]["timestamp"], "timestamp", f"historical step {first_dated}",
                           1, MAX_TIMESTAMP)  # fmt: skip
            cursor = end - interval * first_dated
        else:
            run = first_dated if first_dated is not None else len(steps)
            cursor = reference - interval * (run - 1)
        cursor -= interval  # the first step is one interval after this
    elif steps and not any(k in steps[0] for k in TIME_KEYS):
        cursor = reference if interval is None else reference - interval  # the first is at the reference
    for i, step in enumerate(steps):
        where = f"historical step {i}"
        values = {k: v for k, v in step.items() if k not in TIME_KEYS}
        if "timestamp" in step:
            cursor = _seconds(step["timestamp"], "timestamp", where, 1, MAX_TIMESTAMP)
        elif "relative_time" in step:
            cursor += _seconds(step["relative_time"], "relative_time", where, -MAX_INTERVAL, MAX_INTERVAL)
        elif interval is not None:
            cursor += interval
        elif i > 0:
            raise ProtocolError(f"{where}: no timestamp, relative_time or historical_data_interval")
        if not 0 < cursor <= MAX_TIMESTAMP:
            raise ProtocolError(f"{where}: dated {cursor}, not a time")
        dated.append((cursor, values))
    return data, dated


def answer(
    request: MetricsRequest,
    key: str | None,
    *,
    token_list: list[int] | None = None,
    active_until_timestamp: int | None = None,
    active_seconds_left: int | None = None,
    settings: dict[str, Any] | None = None,
    extra_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Server Response Object, in the request's form (condensed names if it used them), signed
    with data auth ("da", the openpaygo library's response signature) when it carries anything and
    the unit has a key. Empty when there is nothing to say (the specification's default answer)."""
    simple: dict[str, Any] = {}
    if token_list:
        simple["token_list"] = token_list
    if active_until_timestamp is not None:
        simple["active_until_timestamp"] = active_until_timestamp
    if active_seconds_left is not None:
        simple["active_seconds_left"] = active_seconds_left
    if settings:
        simple["settings"] = settings
    if extra_data:
        simple["extra_data"] = extra_data
    if not simple:
        return {}
    if key is not None:
        simple["auth"] = OpenPAYGOMetricsShared.generate_response_signature_from_data(
            data=simple,
            secret_key=key,
            serial_number=request.serial,
            timestamp=request.body.get("timestamp"),
            request_count=request.body.get("request_count"),
        )
    if request.condensed:
        return dict(OpenPAYGOMetricsShared.convert_dict_keys_to_condensed(simple))
    return simple


def verify_answer(answer_body: dict[str, Any], serial: str, key: str, request_body: dict[str, Any]) -> bool:
    """What a device does with an answer (the library has no device-side check): the ``auth`` is the
    data-auth signature of what the answer carries, for the request it answers."""
    simple = dict(OpenPAYGOMetricsShared.convert_dict_keys_to_simple(answer_body))
    auth = simple.pop("auth", None)
    if not isinstance(auth, str):
        return False
    req = dict(OpenPAYGOMetricsShared.convert_dict_keys_to_simple(request_body))
    expected = OpenPAYGOMetricsShared.generate_response_signature_from_data(
        data=simple, secret_key=key, serial_number=serial, timestamp=req.get("timestamp"),
        request_count=req.get("request_count"),
    )  # fmt: skip
    return hmac.compare_digest(str(expected).encode(), auth.encode())
