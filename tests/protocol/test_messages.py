"""The telemetry wire format: round trips, and bad messages refused with the reason."""

from __future__ import annotations

import json
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
