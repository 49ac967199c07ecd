"""Topic names: built, parsed, shared subscriptions, and a topic outside the root refused."""

from __future__ import annotations

import pytest

import protocol
from protocol import ProtocolError


def test_topics() -> None:
    assert protocol.topic("SHS1", "telemetry") == "paygo/v1/units/SHS1/telemetry"
    assert protocol.parse_topic("paygo/v1/units/SHS1/cmd/ack") == ("SHS1", "cmd/ack")
    assert protocol.shared_subscription("ingest", "telemetry") == "$share/ingest/paygo/v1/units/+/telemetry"
    with pytest.raises(ProtocolError):
        protocol.parse_topic("other/SHS1/telemetry")
