"""OpenPAYGO Metrics (spec v1.0.0-rc1) from units that report over HTTP instead of MQTT.

A request, simple or condensed, is checked with the unit's own key (SipHash auth through
``openpaygo.MetricsResponseHandler``) and must carry a request count or timestamp strictly above
the last accepted one (replay protection, row-locked per unit). Its readings go through the same
writer as MQTT telemetry; the answer carries the tokens still waiting for the unit, signed.
Refused requests land in ``ingest_rejects`` with their raw bytes, like refused MQTT messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from openpaygo import MetricsResponseHandler

from backoffice import crypto
from ingest import repository, writer
from protocol.openpaygo_metrics import DATA_FORMATS, DEFAULT_DATA_FORMAT_ID

ENDPOINT = "http:/dd"


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


def _reject(conn: psycopg.Connection, serial: str | None, reason: str, raw: bytes, status: int) -> Answer:
    writer.write_rejects(conn, [(datetime.now(UTC), ENDPOINT, serial, reason, raw)])
    return Answer(status, {"error": reason})


def handle(conn: psycopg.Connection, raw: bytes, secret_key: str) -> Answer:
    """One /dd request, in the caller's transaction."""
    try:
        request = json.loads(raw)
        if not isinstance(request, dict):
            raise ValueError("expected a JSON object")
        fmt = DATA_FORMATS.get(int(request.get("df") or request.get("data_format_id") or DEFAULT_DATA_FORMAT_ID))
        if fmt is None:
            raise ValueError("unknown data_format_id")
        handler = MetricsResponseHandler(raw.decode(), data_format=fmt)
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        return _reject(conn, None, f"not an OpenPAYGO Metrics request: {err}", raw, 400)
    serial = handler.get_device_serial()
    row = repository.lock_unit(conn, serial)
    if row is None:
        return _reject(conn, serial, f"unknown serial {serial!r}", raw, 404)
    unit_id, key_enc, created_at, last_count, last_ts = row
    if key_enc is None:
        return _reject(conn, serial, f"unit {serial!r} has no OpenPAYGO key", raw, 404)
    handler.set_device_parameters(secret_key=crypto.decrypt(secret_key, key_enc), last_request_count=last_count,
                                  last_request_timestamp=last_ts)  # fmt: skip
    try:
        valid = handler.is_auth_valid()
    except (ValueError, KeyError, TypeError) as err:  # the library raises on malformed auth strings
        return _reject(conn, serial, f"auth could not be checked: {err}", raw, 403)
    if not valid:
        return _reject(conn, serial, "bad signature, or a request count / timestamp not above the last", raw, 403)
    try:
        metrics = handler.get_simple_metrics()
    except (ValueError, KeyError, TypeError) as err:
        return _reject(conn, serial, f"data do not match the data format: {err}", raw, 400)

    now = datetime.now(UTC)
    rows: list[writer.ReadingRow] = []
    for step in metrics.get("historical_data") or []:
        ts = datetime.fromtimestamp(int(step["timestamp"]), UTC)
        if ts > now or ts < created_at:
            return _reject(conn, serial, f"reading at {ts.isoformat()} is in the future or before the unit", raw, 400)
        rows.append((unit_id, ts, int(step["timestamp"]), now, step.get("batt_v"), None, step.get("soc"),
                     step.get("batt_temp_c"), None, None, step.get("pv_wh"), step.get("load_wh"), None, None, None,
                     (metrics.get("data") or {}).get("firmware_version")))  # fmt: skip
    writer.write_readings(conn, rows)
    repository.save_request(conn, unit_id, handler.get_request_count(), handler.get_request_timestamp())
    waiting = repository.waiting_tokens(conn, unit_id)
    if waiting:
        handler.add_tokens_to_answer([int(token) for token in waiting])
    return Answer(200, handler.get_answer_dict())
