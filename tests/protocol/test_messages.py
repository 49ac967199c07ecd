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


def test_topics() -> None:
    assert protocol.topic("SHS1", "telemetry") == "paygo/v1/units/SHS1/telemetry"
    assert protocol.parse_topic("paygo/v1/units/SHS1/cmd/ack") == ("SHS1", "cmd/ack")
    assert protocol.shared_subscription("ingest", "telemetry") == "$share/ingest/paygo/v1/units/+/telemetry"
    with pytest.raises(ProtocolError):
        protocol.parse_topic("other/SHS1/telemetry")


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


def test_events_round_trip_and_bad_events_say_why() -> None:
    from ingest.consumer import RawMessage, to_batch

    when = datetime(2024, 6, 1, 12, tzinfo=UTC)
    lost = protocol.DeviceEvent(kind="buffer_overflow", ts=when, detail={"dropped": 7})
    good = protocol.encode_events("SHS1", [protocol.DeviceEvent(kind="tamper", ts=when), lost])
    assert [e.kind for e in protocol.parse_events(good, "SHS1").events] == ["tamper", "buffer_overflow"]
    future = protocol.encode_events("SHS1", [protocol.DeviceEvent(kind="boot", ts=datetime(2099, 1, 1, tzinfo=UTC))])
    unknown = json.dumps({"v": 1, "serial": "SHS1", "events": [{"kind": "exploded", "ts": "2024-06-01T12:00:00Z"}]})
    now = datetime(2024, 6, 2, tzinfo=UTC)
    msgs = [RawMessage(f"paygo/v1/units/SHS1/{t}", p, now) for t, p in
        [("events", good), ("events", future), ("events", unknown.encode()), ("events", b"{")]]  # fmt: skip
    batch = to_batch(msgs, lambda s: (1, datetime(2020, 1, 1, tzinfo=UTC)), now)
    assert [(e[2], e[3]) for e in batch.events] == [("tamper", {}), ("buffer_overflow", {"dropped": 7})]
    reasons = [r[3] for r in batch.rejects]
    assert len(reasons) == 3 and "in the future" in reasons[0]
    assert "schema violation: events.0.kind" in reasons[1] and "invalid JSON" in reasons[2]
