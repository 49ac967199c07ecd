"""The wire protocol between units and the platform (DESIGN.md §5), standing alone: it imports
nothing of ours, and everything that speaks to units (the simulator, ingest, credit, delivery)
builds and parses messages only through it.

- ``protocol.topics``: topic names, shared subscriptions and what each party may do on them (ACL);
- ``protocol.messages``: telemetry, events, status, token commands and their acknowledgements;
- ``protocol.openpaygo_metrics``: the OpenPAYGO Metrics data formats of our units.
"""

from protocol.messages import (
    MAX_EVENTS_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    MAX_READINGS_PER_MESSAGE,
    PROTOCOL_VERSION,
    CommandAck,
    DeviceEvent,
    EventKind,
    EventMessage,
    Reading,
    TelemetryMessage,
    TokenCommand,
    TokenKind,
    encode_ack,
    encode_command,
    encode_events,
    encode_telemetry,
    parse_ack,
    parse_command,
    parse_events,
    parse_status,
    parse_telemetry,
    utc_iso,
)
from protocol.topics import (
    SERVICE_GRANTS,
    TOPIC_ROOT,
    UNIT_GRANTS,
    Kind,
    ProtocolError,
    acl_roots,
    all_units,
    parse_topic,
    service_acl_topics,
    shared_subscription,
    topic,
    unit_acl_patterns,
)

__all__ = [
    "MAX_EVENTS_PER_MESSAGE", "MAX_MESSAGE_BYTES", "MAX_READINGS_PER_MESSAGE", "PROTOCOL_VERSION", "SERVICE_GRANTS",
    "TOPIC_ROOT", "UNIT_GRANTS", "CommandAck", "DeviceEvent", "EventKind", "EventMessage", "Kind", "ProtocolError",
    "Reading", "TelemetryMessage", "TokenCommand", "TokenKind", "acl_roots", "all_units", "encode_ack",
    "encode_command", "encode_events", "encode_telemetry", "parse_ack", "parse_command", "parse_events",
    "parse_status", "parse_telemetry", "parse_topic", "service_acl_topics", "shared_subscription", "topic",
    "unit_acl_patterns", "utc_iso",
]  # fmt: skip
