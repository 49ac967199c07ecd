"""OpenPAYGO Metrics (``openpaygo/metrics`` Specifications.md, v1.0 draft) from units that report over
HTTP (``POST /device_data`` or ``/dd``, JSON or CBOR) instead of MQTT.

A request, simple or condensed, must have the shape ``protocol.openpaygo_metrics.parse_request``
checks, and is then checked with the unit's own key (SipHash; every method: sa, ta, ca, da, ra).
Simple auth ("sa"), which signs only the serial number, is refused unless the unit's product allows
it (``products.metrics_simple_auth``). A request without ``auth`` is accepted only with a JWT naming
the unit (``device_api``: registration and testing). Replay protection keeps the last accepted
request count and timestamp apart: a request must carry at least one of them (signed, unless
simple auth or a JWT), and each it carries must be strictly above its own last value (row-locked
per unit), a count at most MAX_COUNT_STEP above. Its timestamp must lie between the unit's
registration and a few minutes from now. The signed string does not tell the method's fields apart,
so a unit's method is pinned by its first signed request (another is refused until an administrator
resets ``metrics_state.last_auth_method``), and it must keep carrying each signed field it has
carried (``_replayed``).

Its values are named through its data format (``data_format_id``: a row of metrics_data_formats,
for any product or the unit's own; or an inline ``data_format``; or none: simple names), each
historical step dated as the specification says (``protocol.openpaygo_metrics.resolve``). A variable
that names a telemetry column (by its name, or its format's ``column``) fills it, scaled by its
``scale_factor``, within the same ranges as MQTT telemetry (``protocol.validate_reading``), through
the same writer; every other value is kept in ``telemetry.extra``. The request's current data
(``data``) fill the columns of each of its steps (firmware), and its other values go into the newest
step's ``extra``; a request without steps is one reading at its reference time.

Accessories nested in a request are requests of their own units (looked up by serial, never
created: a device cannot add units to the registry), each checked with its own key and replay state
(each must carry its own ``auth``: neither the parent's signature nor a JWT covers it);
one that is refused (unknown serial, bad signature...) is a dead letter of its own and the rest of
the request still counts.

The answer (201) is the Server Response Object in the request's form and encoding: the tokens the
unit lacks (by increasing count, above the ``token_count`` it reports; under data auth, "da" or
"ra", the only methods that sign the data, those up to it count as acknowledged, ending their MQTT
delivery) when it reports one, or, for a product in "time mode" (``metrics_set_time``) and under
data auth, one SET_TIME token for the credit it has from today instead;
``active_until_timestamp`` / ``active_seconds_left`` when asked; ``settings.base_url`` after an
administrator moved the unit; ``extra_data`` set for it; signed with data auth. Refused requests land
in ``ingest_rejects`` with their raw bytes, like refused MQTT messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from backoffice import clock, crypto
from backoffice.credit import service as credit
from ingest import repository, writer
from ingest.limits import DEAD_LETTER_KEEP, MAX_BEFORE_CREATED
from ingest.limits import MAX_FUTURE as MAX_READING_FUTURE
from protocol import EARLIEST_TS, ProtocolError, validate_reading
from protocol import openpaygo_metrics as om
from protocol.openpaygo_metrics import MAX_REQUEST_BYTES, SIMPLE_AUTH, DataFormat, MetricsRequest, parse_request

ENDPOINT = "http:/dd"
# A request dated further ahead is refused: its timestamp would lock the unit's later requests out.
MAX_FUTURE = timedelta(minutes=5)
# A request count further above the unit's last accepted one is refused: no device sends a million
# requests between two that reach us, and a count that jumps there is likely a timestamp forged as one.
MAX_COUNT_STEP = 1_000_000
# The request's own data are dated with this seq offset when they are a reading of their own, apart
# from historical steps (seq = their timestamp) at the same second.
DATA_SEQ_OFFSET = 2**40
# The auth methods whose signature covers the request's data (its token_count among them).
SIGNED_DATA = frozenset({"da", "ra"})
# Registered data formats never change (a new version is a new id): kept once read, per database.
_FORMATS: dict[tuple[str, int, str, int], repository.FormatRow] = {}


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    content_type: str = om.JSON
    unit_id: int | None = None
    readings: int = 0
    accessories: list[str] = field(default_factory=list)  # serials of the accessories stored


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _reject(conn: psycopg.Connection, serial: str | None, reason: str, raw: bytes, status: int) -> Answer:
    writer.write_rejects(conn, [(clock.utc_now(), ENDPOINT, serial, reason, raw)])
    return Answer(status, {"error": reason})


def read(raw: bytes, content_type: str | None = None, jwt_serial: str | None = None) -> MetricsRequest | Refused:
    """The request checked for shape (no database needed: the device API does this before it takes
    a connection of the pool), or why it is refused."""
    if len(raw) > MAX_REQUEST_BYTES:
        reason = f"request larger than {MAX_REQUEST_BYTES} bytes (its first {DEAD_LETTER_KEEP} bytes are kept)"
        return Refused(413, reason)
    try:
        return parse_request(raw, content_type, auth_required=jwt_serial is None)
    except ProtocolError as err:
        return Refused(400, f"not an OpenPAYGO Metrics request: {err}")


def handle(
    conn: psycopg.Connection,
    raw: bytes,
    secret_key: str,
    now: datetime | None = None,
    *,
    content_type: str | None = None,
    jwt_serial: str | None = None,
    parsed: MetricsRequest | Refused | None = None,
) -> Answer:
    """One send-data request, in the caller's transaction. ``jwt_serial``: the serial a verified JWT
    of the request names (then the request may come without ``auth``). ``parsed``: what ``read``
    made of ``raw`` already (with the same ``content_type`` and ``jwt_serial``)."""
    now = now or clock.utc_now()
    kind = om.CBOR if om.is_cbor(content_type) else om.JSON
    request = parsed if parsed is not None else read(raw, content_type, jwt_serial)
    if isinstance(request, Refused):
        kept = raw[:DEAD_LETTER_KEEP] if request.status == 413 else raw
        return _reject(conn, None, request.reason, kept, request.status)
    try:
        unit, key, stored, named = _accept(conn, request, secret_key, now, jwt_serial, int(now.timestamp()))
    except Refused as err:
        return _reject(conn, request.serial, err.reason, raw, err.status)
    reference = request.data_collection_timestamp or request.timestamp or int(now.timestamp())
    done = []
    for i, acc in enumerate(request.accessories):
        try:
            with conn.transaction():  # a savepoint: a refused accessory leaves the rest
                _accept(conn, acc, secret_key, now, None, reference, accessory=True)  # its own auth, never a JWT
            done.append(acc.serial)
        except Refused as err:
            _reject(conn, acc.serial, f"accessory {i} of {request.serial!r}: {err.reason}", raw, err.status)
    body = _answer(conn, request, unit, key, named, now, secret_key)
    repository.save_request(conn, unit.id, *request.replay_values(), request.method or "jwt",
                            _format_id(request), base_url_sent=bool(unit.base_url))  # fmt: skip
    return Answer(201, body, kind, unit.id, stored, done)


def _format_id(request: MetricsRequest) -> int | None:
    return request.data_format_id


def _accept(
    conn: psycopg.Connection,
    request: MetricsRequest,
    secret_key: str,
    now: datetime,
    jwt_serial: str | None,
    received_at: int,
    accessory: bool = False,
) -> tuple[repository.MetricsUnit, str, int, dict[str, Any]]:
    """Check a request (or an accessory's) and store its readings: (unit, key, readings, its current
    data named), or Refused."""
    serial = request.serial
    unit = repository.lock_unit(conn, serial)
    if unit is None:
        raise Refused(404, f"unknown {'accessory ' if accessory else ''}serial {serial!r}")
    if unit.key_enc is None:
        raise Refused(404, f"unit {serial!r} has no OpenPAYGO key")
    key = crypto.decrypt(secret_key, unit.key_enc)
    if request.auth is None:
        if accessory:
            raise Refused(401, "an accessory must carry its own auth, signed with its own key")
        if jwt_serial != serial:
            raise Refused(401, "no auth: sign the request, or send a JWT that names this unit")
    else:
        if request.method == SIMPLE_AUTH and not unit.simple_auth:
            raise Refused(403, "simple auth ('sa') is not enabled for this unit's product")
        if not request.signed_with(key):
            raise Refused(403, "bad signature")
    replay = _replayed(request, unit)
    if replay:
        raise Refused(403, replay)
    when = _out_of_window(request, unit.created_at, now)
    if when:
        raise Refused(400, when)
    fmt = _format(conn, request, unit)
    try:
        data, steps = om.resolve(request, fmt, received_at)
        rows, extras = _rows(data, steps, fmt, unit.id, unit.created_at, now, received_at)
    except ProtocolError as err:
        raise Refused(400, str(err)) from None
    writer.write_readings(conn, rows)
    writer.write_extras(conn, extras)
    writer.write_reporting(conn, unit.id, now)  # no status topic over HTTP: reporting is its announcement
    if accessory:
        repository.save_request(conn, unit.id, *request.replay_values(), request.method or "jwt", _format_id(request))
    return unit, key, len(rows), data


def _format(conn: psycopg.Connection, request: MetricsRequest, unit: repository.MetricsUnit) -> DataFormat | None:
    if request.inline_format is not None:
        return request.inline_format
    if request.data_format_id is None:
        return None
    cache_key = (conn.info.host, conn.info.port, conn.info.dbname, request.data_format_id)
    row = _FORMATS.get(cache_key)
    if row is None:
        row = repository.data_format(conn, request.data_format_id)
        if row is not None:
            _FORMATS[cache_key] = row
    if row is None or (row.product_id is not None and row.product_id != unit.product_id):
        raise Refused(400, f"unknown data_format_id {request.data_format_id} (for this unit's product)")
    return DataFormat(row.id, tuple(row.data_order), tuple(row.historical_data_order), row.historical_data_interval,
                      row.variables)  # fmt: skip


def _answer(
    conn: psycopg.Connection,
    request: MetricsRequest,
    unit: repository.MetricsUnit,
    key: str,
    named: dict[str, Any],
    now: datetime,
    secret_key: str,
) -> dict[str, Any]:
    """The Server Response Object for the request whose current data are ``named``."""
    tokens: list[int] | None = None
    reported = named.get("token_count")
    # Only data auth ("da", "ra") signs the request's data: a token_count under sa/ta/ca (or a JWT)
    # gets the tokens above it, but acknowledges nothing and mints no SET_TIME token.
    signed_data = request.method in SIGNED_DATA
    if reported is not None:
        valid = isinstance(reported, int) and not isinstance(reported, bool) and 0 <= reported < 2**31
        last = reported if valid else -1
        lacking = repository.tokens_after(conn, unit.id, last)
        if signed_data and unit.set_time and lacking and all(kind != "disable_payg" for _, kind in lacking):
            # Time mode: one SET_TIME token for the expiry, instead of what the unit lacks.
            token = credit.set_time_token(conn, unit.id, secret_key, now, last)
            lacking = [(token, "set_time")] if token is not None else lacking
        tokens = [int(token) for token, _ in lacking]
        if valid and signed_data:
            repository.ack_tokens_upto(conn, unit.id, last)
    until_ts: int | None = None
    seconds_left: int | None = None
    if named.get("active_until_timestamp_requested") or named.get("active_seconds_left_requested"):
        until = repository.active_until(conn, unit.id)
        if named.get("active_until_timestamp_requested"):
            until_ts = int(until.timestamp()) if until is not None else 0
        else:
            seconds_left = max(0, int((until - now).total_seconds())) if until is not None else 0
    settings = {"base_url": unit.base_url} if unit.base_url else None
    return om.answer(request, key, token_list=tokens, active_until_timestamp=until_ts,
                     active_seconds_left=seconds_left, settings=settings, extra_data=unit.extra_data)  # fmt: skip


def _replayed(request: MetricsRequest, unit: repository.MetricsUnit) -> str | None:
    """Why the request is a replay (or cannot be told from one), or None.

    The signed string does not say which fields it holds (``ta`` signs serial+timestamp, ``ca``
    serial+count: the same string when the count is that timestamp; ``da``/``ra`` with a timestamp
    and no count sign what a count-only request with the digits run together signs). So a unit's
    method is pinned by its first signed request (``metrics_state.last_auth_method``; another
    method is refused until an administrator resets it), a request must carry every signed field
    its unit has carried before (a ``da``/``ra`` unit that sent timestamps keeps sending them), and
    a count may not jump more than MAX_COUNT_STEP above the last accepted."""
    pinned = unit.auth_method if unit.auth_method in om.SIGNED else None
    if request.method is not None and pinned is not None and request.method != pinned:
        return (f"auth method {request.method!r} refused: this unit signs with {pinned!r} (its first accepted "
                "request's method; an administrator can reset it)")  # fmt: skip
    count, timestamp = request.replay_values()
    if request.method is not None and request.method != SIMPLE_AUTH:
        lasts = {"request_count": unit.last_request_count, "timestamp": unit.last_request_timestamp}
        carried = {"request_count": count, "timestamp": timestamp}
        for name in sorted(om.SIGNED[request.method]):
            if lasts[name] is not None and carried[name] is None:
                return f"the request carries no {name.replace('_', ' ')}, which this unit's requests are signed with"
    if count is None and timestamp is None:
        if request.auth is None:
            return None  # a JWT request (testing) need not carry either
        return "the request carries no signed request count or timestamp"
    if count is not None and unit.last_request_count is not None:
        if count <= unit.last_request_count:
            return f"request count {count} not above the last accepted ({unit.last_request_count})"
        if count > unit.last_request_count + MAX_COUNT_STEP:
            return (f"request count {count} is more than {MAX_COUNT_STEP} above the last accepted "
                    f"({unit.last_request_count})")  # fmt: skip
    if timestamp is not None and unit.last_request_timestamp is not None and timestamp <= unit.last_request_timestamp:
        return f"timestamp {timestamp} not above the last accepted ({unit.last_request_timestamp})"
    return None


def _out_of_window(request: MetricsRequest, created_at: datetime, now: datetime) -> str | None:
    """Why the request's timestamps are implausible (a clock never set, or ahead), or None."""
    earliest = max(created_at - MAX_BEFORE_CREATED, EARLIEST_TS)
    stamps = {"timestamp": request.timestamp, "data_collection_timestamp": request.data_collection_timestamp}
    for name, value in stamps.items():
        if value is None:
            continue
        at = datetime.fromtimestamp(value, UTC)
        if at > now + MAX_FUTURE:
            return f"{name} {at.isoformat()} is in the future"
        if at < earliest:
            return f"{name} {at.isoformat()} is before the unit existed"
    return None


def _split(values: dict[str, Any], fmt: DataFormat | None, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Values into (telemetry columns, extra), numbers scaled by their variable's scale_factor."""
    fmt = fmt or DataFormat(None)
    columns: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in values.items():
        factor = fmt.scale(name)
        if factor is not None and isinstance(value, int | float) and not isinstance(value, bool):
            value = value * factor
            if not math.isfinite(value):
                raise ProtocolError(f"{where}: {name} scaled by {factor} is out of range")
        column = fmt.column(name)
        if column is None:
            extra[name] = value
            continue
        if column in columns:
            raise ProtocolError(f"{where}: two variables fill {column}")
        if column in ("credit_s", "rssi") and isinstance(value, float) and value.is_integer():
            value = int(value)
        if column == "locked" and value in (0, 1) and not isinstance(value, bool):
            value = bool(value)
        columns[column] = value
    return columns, extra


def _rows(
    data: dict[str, Any],
    steps: list[tuple[int, dict[str, Any]]],
    fmt: DataFormat | None,
    unit_id: int,
    created_at: datetime,
    now: datetime,
    reference: int,
) -> tuple[list[writer.ReadingRow], list[tuple[int, datetime, int, dict[str, Any]]]]:
    """The request's readings as rows, each through the protocol's Reading (the same schema and ranges
    as MQTT telemetry), and the values no column holds; ProtocolError naming the first that is not."""
    data_columns, data_extra = _split(data, fmt, "data")
    dated = [(stamp, stamp, values) for stamp, values in steps]
    if not dated:
        dated = [(reference, reference + DATA_SEQ_OFFSET, {})]
    newest = max(range(len(dated)), key=lambda i: dated[i][0])
    rows: list[writer.ReadingRow] = []
    extras: list[tuple[int, datetime, int, dict[str, Any]]] = []
    for i, (stamp, seq, values) in enumerate(dated):
        where = f"historical step {i}"
        columns, extra = _split(values, fmt, where)
        columns = data_columns | columns
        if i == newest:
            extra = data_extra | extra
        try:
            r = validate_reading({"seq": seq, "ts": datetime.fromtimestamp(stamp, UTC), **columns})
        except ProtocolError as err:
            raise ProtocolError(f"{where}: {err}") from None
        if r.ts > now + MAX_READING_FUTURE or r.ts < created_at - MAX_BEFORE_CREATED:
            raise ProtocolError(f"{where}: reading at {r.ts.isoformat()} is in the future or before the unit")
        rows.append(writer.reading_row(unit_id, r, now))
        if extra:
            extras.append((unit_id, r.ts, r.seq, extra))
    return rows, extras
