"""MQTT topics of the wire protocol (docs/wire_protocol.md) and what each party may do on them.

``root`` is ``TOPIC_ROOT`` in production; tests (and a broker shared by several platforms) put a
prefix of their own in front of it so that their traffic never mixes.
"""

from __future__ import annotations

from typing import Literal

TOPIC_ROOT = "paygo/v1/units"

# "metrics": an OpenPAYGO Metrics request body, for units whose firmware speaks that instead of ours.
Kind = Literal["telemetry", "events", "cmd", "cmd/ack", "status", "metrics"]
Access = Literal["read", "write"]

# What a unit may do under its own serial, and nothing else: publish what it measures and
# acknowledges, read the commands meant for it.
UNIT_GRANTS: tuple[tuple[Access, Kind], ...] = (
    ("write", "telemetry"),
    ("write", "events"),
    ("write", "status"),
    ("write", "metrics"),
    ("write", "cmd/ack"),
    ("read", "cmd"),
)
# What each platform service may do, for every unit: ingest only reads what units publish,
# delivery only sends commands and reads their acknowledgements.
SERVICE_GRANTS: dict[str, tuple[tuple[Access, Kind], ...]] = {
    "ingest": (("read", "telemetry"), ("read", "events"), ("read", "status"), ("read", "metrics")),
    "delivery": (("write", "cmd"), ("read", "cmd/ack")),
}


# MQTT client ids of the platform's own services: the ingest workers' "ingest-<worker id>", delivery's
# "delivery-<host>", the broker administrator's "paygo-broker-admin". A unit's client id is its serial
# (the device listener's use_username_as_clientid), and a login with a service's client id takes over
# that service's session (issue 22 finding 4: an ingest worker kicked off, its queued readings wiped),
# so serials and service ids are kept apart: no serial starts with one of these, in any case.
SERVICE_CLIENT_ID_PREFIXES = ("ingest-", "delivery-", "paygo-")


def reserved_serial(serial: str) -> str | None:
    """Why ``serial`` cannot be a unit's (it has a service's client id form), or None."""
    for prefix in SERVICE_CLIENT_ID_PREFIXES:
        if serial.lower().startswith(prefix):
            return f"serial {serial[:60]!r} starts with {prefix!r}, which is kept for the platform's services"
    return None


class ProtocolError(ValueError):
    """A message that does not follow the protocol; str() is the reason stored with the reject."""


def topic(serial: str, kind: Kind, root: str = TOPIC_ROOT) -> str:
    return f"{root}/{serial}/{kind}"


def shared_subscription(group: str, kind: Kind, root: str = TOPIC_ROOT) -> str:
    """The MQTT v5 shared subscription through which a group of workers splits the traffic."""
    return f"$share/{group}/{root}/+/{kind}"


def all_units(kind: Kind, root: str = TOPIC_ROOT) -> str:
    """The filter that matches ``kind`` messages of every unit."""
    return f"{root}/+/{kind}"


def parse_topic(name: str, root: str = TOPIC_ROOT) -> tuple[str, str]:
    """Split ``{root}/{serial}/{kind}`` into (serial, kind); ProtocolError otherwise."""
    prefix = root + "/"
    if not name.startswith(prefix):
        raise ProtocolError(f"topic outside {root}: {name}")
    serial, _, kind = name[len(prefix) :].partition("/")
    if not serial or not kind:
        raise ProtocolError(f"topic without serial or kind: {name}")
    return serial, kind


def acl_roots(root: str = TOPIC_ROOT) -> list[str]:
    """The roots an ACL must cover: the protocol's, one prefix level in front of it (tests and brokers
    shared by several platforms use one), and ``root`` itself when it is neither."""
    roots = [TOPIC_ROOT, f"+/{TOPIC_ROOT}"]
    if root != TOPIC_ROOT and root.partition("/")[2] != TOPIC_ROOT:
        roots.append(root)
    return roots


def unit_acl_patterns(root: str = TOPIC_ROOT, username: str = "%u") -> list[tuple[Access, str]]:
    """(access, topic pattern) pairs that confine a unit logged in as ``username`` (its serial; ``%u``
    in Mosquitto's ACL patterns) to its own topics."""
    return [(access, f"{r}/{username}/{kind}") for r in acl_roots(root) for access, kind in UNIT_GRANTS]


def service_acl_topics(role: str, root: str = TOPIC_ROOT) -> list[tuple[Access, str]]:
    """(access, topic filter) pairs of a platform service role, over every unit."""
    return [(access, f"{r}/+/{kind}") for r in acl_roots(root) for access, kind in SERVICE_GRANTS[role]]
