"""The telemetry wire format: round trips, and bad messages refused with the reason."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

import protocol
from protocol import ProtocolError, Reading


def _reading(seq: int = 1) -> Reading:
    return Reading(seq=seq, ts=datetime(2024, 6, 1, 12, tzinfo=UTC), batt_v=12.9, soc=0.8, credit_s=3600)


def test_round_trip() -> None:
    raw = protocol.encode_telemetry("SHS1", [_reading(1), _reading(2)])
    msg = protocol.parse_telemetry(raw, "SHS1")
    assert [r.seq for r in msg.readings] == [1, 2]
    assert msg.readings[0].ts == datetime(2024, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (json.dumps({"v": 1, "serial": "SHS1", "readings": []}).encode(), "schema violation"),
        (
            json.dumps({"v": 1, "serial": "SHS1", "readings": [{"seq": 1, "ts": "2024-06-01T12:00:00"}]}).encode(),
            "schema violation",
        ),  # timestamp without a time zone
        (
            json.dumps(
                {"v": 1, "serial": "SHS1", "readings": [{"seq": 1, "ts": "2024-06-01T12:00:00Z", "soc": 1.7}]}
            ).encode(),
            "readings.0.soc",
        ),
        (json.dumps({"v": 2, "serial": "SHS1", "readings": []}).encode(), "schema violation"),
        (protocol.encode_telemetry("SHS2", [_reading()]), "differs from topic"),
        (b"x" * (protocol.MAX_MESSAGE_BYTES + 1), "exceeds"),
    ],
)
def test_bad_messages_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        protocol.parse_telemetry(payload, "SHS1")


def _raw(key: str, item: dict[str, object]) -> bytes:
    base = {
        "readings": {"seq": 1, "ts": "2024-06-01T12:00:00Z"},
        "events": {"kind": "token", "ts": "2024-06-01T12:00:00Z"},
    }
    return json.dumps({"v": 1, "serial": "SHS1", key: [base[key] | item]}, allow_nan=True).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            _raw("readings", {"credit_s": 2**63}),
            "readings.0.credit_s: Input should be less than or equal to 4294967295",
        ),
        (_raw("readings", {"fw": "2.1\x00"}), "readings.0.fw: Value error, contains a NUL character"),
        (_raw("readings", {"x\x00": 1}), r"readings.0.x\x00: Extra inputs are not permitted"),
        (_raw("readings", {"soc": math.nan}), "readings.0.soc: Input should be a finite number"),
        (_raw("readings", {"ts": "0001-01-01T00:00:00+01:00"}), "readings.0.ts: Value error, timestamp out of range"),
        (_raw("readings", {"ts": "1999-12-31T23:59:59Z"}), "is outside 2000-01-01..2100-01-01"),
        (_raw("events", {"detail": {"dropped": math.nan}}), "detail 'dropped': not a finite number"),
        (_raw("events", {"detail": {"result": "ok\x00"}}), "detail 'result': contains a NUL character"),
        (_raw("events", {"detail": {"\x00": 1}}), r"detail key '\x00' contains a NUL character"),
        (_raw("events", {"detail": {"n": 2**63}}), "detail 'n': integer out of range"),
        (_raw("events", {"detail": {f"k{i}": "v" * 100 for i in range(12)}}), "detail larger than 1024 bytes"),
        (_raw("events", {"ts": "0001-01-01T00:00:00Z"}), "events.0.ts: Value error, timestamp 0001-01-01"),
    ],
)
def test_what_the_database_cannot_hold_is_refused_and_the_reason_is_storable(payload: bytes, reason: str) -> None:
    """Each of these passed the parser before and failed (or killed the worker) in the database."""
    kind = "events" if b'"events"' in payload else "readings"
    parse = protocol.parse_events if kind == "events" else protocol.parse_telemetry
    with pytest.raises(ProtocolError) as refused:
        parse(payload, "SHS1")
    assert reason in str(refused.value)
    assert "\x00" not in str(refused.value)
