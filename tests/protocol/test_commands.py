"""Token commands and their acknowledgements, and the ACL grants: the platform and the firmware read
each other's messages only through ``protocol``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol
from protocol import ProtocolError, TokenCommand


def test_a_command_survives_the_outbox_and_the_dispatcher() -> None:
    # Credit writes the command without an outbox id; the dispatcher adds it; the unit parses it.
    stored = protocol.encode_command(TokenCommand(token="012345678", token_type="add_time", days=7, count=3))
    assert "outbox_id" not in json.loads(stored)
    sent = protocol.encode_command(protocol.parse_command(stored).model_copy(update={"outbox_id": 42}))
    got = protocol.parse_command(sent.encode())
    assert (got.token, got.token_type, got.days, got.count, got.outbox_id) == ("012345678", "add_time", 7, 3, 42)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"type": "token"}',  # no token
        b'{"type": "token", "token": "12345", "token_type": "add_time", "days": 1, "count": 1}',  # too short
        b'{"type": "token", "token": "12345678x", "token_type": "add_time", "days": 1, "count": 1}',  # not digits
        b'{"type": "token", "token": "123456789", "token_type": "unlock", "days": 1, "count": 1}',  # unknown kind
        b'{"type": "token", "token": "123456789", "token_type": "add_time", "days": 1, "count": 1, "x": 1}',
        b'{"type": "reboot"}',
        b"not json",
    ],
)
def test_the_firmware_refuses_what_is_not_a_command(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_command(payload)


def test_acks_round_trip_and_malformed_ones_are_refused() -> None:
    ack = protocol.parse_ack(protocol.encode_ack(42, True))
    assert (ack.outbox_id, ack.accepted) == (42, True)
    assert protocol.parse_ack(b'{"outbox_id": 7}').accepted is None  # older firmware says only which
    for bad in (protocol.encode_ack(None, False), b'{"outbox_id": "x"}', b'{"outbox_id": 0}', b"[]", b""):
        with pytest.raises(ProtocolError):
            protocol.parse_ack(bad)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_command_an_ack_or_a_protocol_error(raw: bytes) -> None:
    for parse in (protocol.parse_command, protocol.parse_ack):
        try:
            parse(raw)
        except ProtocolError:
            pass


def test_a_unit_may_only_touch_its_own_topics() -> None:
    patterns = protocol.unit_acl_patterns("paygo/v1/units")
    assert ("read", "paygo/v1/units/%u/cmd") in patterns
    assert ("write", "paygo/v1/units/%u/telemetry") in patterns
    assert all("/%u/" in name for _, name in patterns)  # never another unit's, never a wildcard
    assert not [name for access, name in patterns if access == "read" and not name.endswith("/cmd")]


def test_service_roles_get_only_their_grants() -> None:
    ingest = protocol.service_acl_topics("ingest")
    assert {access for access, _ in ingest} == {"read"}
    delivery = {name: access for access, name in protocol.service_acl_topics("delivery")}
    assert delivery["paygo/v1/units/+/cmd"] == "write" and delivery["paygo/v1/units/+/cmd/ack"] == "read"
    # A test's own root is covered besides the protocol's own and one prefix in front of it.
    assert protocol.acl_roots("x/y") == ["paygo/v1/units", "+/paygo/v1/units", "x/y"]
    assert protocol.acl_roots("test-1/paygo/v1/units") == ["paygo/v1/units", "+/paygo/v1/units"]
