"""OpenPAYGO Metrics (spec v1.0.0-rc1) from units that report over HTTP instead of MQTT.

A request, simple or condensed, must have the shape ``protocol.openpaygo_metrics.parse_request``
checks, and is then checked with the unit's own key (SipHash). Simple auth ("sa"), which signs
only the serial number, is refused unless the unit's product allows it (``products.
metrics_simple_auth``). Replay protection keeps the last accepted request count and timestamp
apart: a request must carry at least one of them (signed, unless simple auth is allowed), and each
it carries must be strictly above its own last value (row-locked per unit). Its timestamp must lie
between the unit's registration and a few minutes from now. Its readings pass the same schema and
ranges as MQTT telemetry (``protocol.validate_reading``) and go through the same writer; the
answer carries the tokens still waiting for the unit, signed. Refused requests land in
``ingest_rejects`` with their raw bytes, like refused MQTT messages.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from openpaygo import MetricsResponseHandler
from openpaygo.metrics_shared import OpenPAYGOMetricsShared

from backoffice import crypto
from ingest import repository, writer
from ingest.consumer import DEAD_LETTER_KEEP, MAX_BEFORE_CREATED
from ingest.consumer import MAX_FUTURE as MAX_READING_FUTURE
from protocol import EARLIEST_TS, ProtocolError, validate_reading
from protocol.openpaygo_metrics import DATA_FORMATS, MAX_REQUEST_BYTES, SIMPLE_AUTH, MetricsRequest, parse_request

ENDPOINT = "http:/dd"
# A request dated further ahead is refused: its timestamp would lock the unit's later requests out.
MAX_FUTURE = timedelta(minutes=5)


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


def _reject(conn: psycopg.Connection, serial: str | None, reason: str, raw: bytes, status: int) -> Answer:
    writer.write_rejects(conn, [(datetime.now(UTC), ENDPOINT, serial, reason, raw)])
    return Answer(status, {"error": reason})


def handle(conn: psycopg.Connection, raw: bytes, secret_key: str, now: datetime | None = None) -> Answer:
    """One /dd request, in the caller's transaction."""
    now = now or datetime.now(UTC)
    if len(raw) > MAX_REQUEST_BYTES:
        reason = f"request larger than {MAX_REQUEST_BYTES} bytes (its first {DEAD_LETTER_KEEP} bytes are kept)"
        return _reject(conn, None, reason, raw[:DEAD_LETTER_KEEP], 413)
    try:
        request = parse_request(raw)
    except ProtocolError as err:
        return _reject(conn, None, f"not an OpenPAYGO Metrics request: {err}", raw, 400)
    serial = request.serial
    unit = repository.lock_unit(conn, serial)
    if unit is None:
        return _reject(conn, serial, f"unknown serial {serial!r}", raw, 404)
    if unit.key_enc is None:
        return _reject(conn, serial, f"unit {serial!r} has no OpenPAYGO key", raw, 404)
    if request.method == SIMPLE_AUTH and not unit.simple_auth:
        return _reject(conn, serial, "simple auth ('sa') is not enabled for this unit's product", raw, 403)
    key = crypto.decrypt(secret_key, unit.key_enc)
    handler = MetricsResponseHandler(request.text, data_format=DATA_FORMATS[request.data_format_id])
    handler.set_device_parameters(secret_key=key)
    if not _signed(handler, request, key):
        return _reject(conn, serial, "bad signature", raw, 403)
    replay = _replayed(request, unit)
    if replay:
        return _reject(conn, serial, replay, raw, 403)
    when = _out_of_window(request, unit.created_at, now)
    if when:
        return _reject(conn, serial, when, raw, 400)
    try:
        metrics = handler.get_simple_metrics()
        rows = _rows(metrics, DATA_FORMATS[request.data_format_id], unit.id, unit.created_at, now)
    except ProtocolError as err:
        return _reject(conn, serial, str(err), raw, 400)
    except (ValueError, KeyError, TypeError, IndexError, OverflowError, OSError) as err:  # the library's parsing
        return _reject(conn, serial, f"data do not match the data format: {err}", raw, 400)
    writer.write_readings(conn, rows)
    repository.save_request(conn, unit.id, *request.replay_values())
    waiting = repository.waiting_tokens(conn, unit.id)
    if waiting:
        handler.add_tokens_to_answer([int(token) for token in waiting])
    return Answer(200, handler.get_answer_dict())


def _signed(handler: MetricsResponseHandler, request: MetricsRequest, key: str) -> bool:
    """Whether the request's auth string is its signature with ``key`` (compared in constant time)."""
    try:
        sign = OpenPAYGOMetricsShared.generate_request_signature_from_data
        expected = sign(handler.request_dict, request.method, key)
    except (ValueError, KeyError, TypeError):  # e.g. timestamp auth without a timestamp: not signed
        return False
    return hmac.compare_digest(str(expected).encode(), request.auth.encode())


def _replayed(request: MetricsRequest, unit: repository.MetricsUnit) -> str | None:
    """Why the request is a replay (or cannot be told from one), or None."""
    count, timestamp = request.replay_values()
    if count is None and timestamp is None:
        return "the request carries no signed request count or timestamp"
    if count is not None and unit.last_request_count is not None and count <= unit.last_request_count:
        return f"request count {count} not above the last accepted ({unit.last_request_count})"
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


def _rows(
    metrics: dict[str, Any], fmt: dict[str, Any], unit_id: int, created_at: datetime, now: datetime
) -> list[writer.ReadingRow]:
    """The request's historical steps as reading rows, each through the protocol's Reading (the same
    schema and ranges as MQTT telemetry); ProtocolError naming the first step that is not."""
    data = metrics.get("data") or {}
    firmware = data.get("firmware_version") if isinstance(data, dict) else None
    order = set(fmt["historical_data_order"])
    rows: list[writer.ReadingRow] = []
    for i, step in enumerate(metrics.get("historical_data") or []):
        stamp = step.get("timestamp")
        if isinstance(stamp, bool) or not isinstance(stamp, int) or not 0 < stamp < 2**32:
            raise ProtocolError(f"historical step {i}: timestamp {stamp!r} is not a time")
        unknown = set(step) - order - {"timestamp"}
        if unknown:
            raise ProtocolError(f"historical step {i}: unknown variables {sorted(unknown)!r}")
        values = {name: step[name] for name in order if step.get(name) is not None}
        try:
            r = validate_reading({"seq": stamp, "ts": datetime.fromtimestamp(stamp, UTC), "fw": firmware, **values})
        except ProtocolError as err:
            raise ProtocolError(f"historical step {i}: {err}") from None
        if r.ts > now + MAX_READING_FUTURE or r.ts < created_at - MAX_BEFORE_CREATED:
            raise ProtocolError(
                f"historical step {i}: reading at {r.ts.isoformat()} is in the future or before the unit"
            )
        rows.append((unit_id, r.ts, r.seq, now, r.batt_v, r.batt_a, r.soc, r.batt_temp_c, r.pv_v, r.pv_w, r.pv_wh,
                     r.load_wh, r.credit_s, r.locked, r.rssi, r.fw))  # fmt: skip
    return rows
