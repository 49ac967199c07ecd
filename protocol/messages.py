"""Device messages of the wire protocol (DESIGN.md §5): telemetry, events, status, and the token
commands the platform sends with the units' acknowledgements.

Pure functions only: no broker, no database. Every producer and consumer (the simulator, ingest,
credit, delivery) builds and parses messages with this module, so all speak the same version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from protocol.topics import ProtocolError

PROTOCOL_VERSION: Literal[1] = 1
# A message larger than this is refused before it is parsed (a store-and-forward flush of
# 500 readings is about 120 kB).
MAX_MESSAGE_BYTES = 256 * 1024
MAX_READINGS_PER_MESSAGE = 500


class Reading(BaseModel):
    """One telemetry sample. Energies are Wh during the interval that ends at ``ts``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=0, lt=2**62, description="per-device monotonic sequence number")
    ts: AwareDatetime
    batt_v: float | None = Field(default=None, ge=0, le=100, description="battery voltage, V")
    batt_a: float | None = Field(default=None, ge=-200, le=200, description="battery current, A (+ charging)")
    soc: float | None = Field(default=None, ge=0, le=1, description="state of charge, 0..1")
    batt_temp_c: float | None = Field(default=None, ge=-40, le=120)
    pv_v: float | None = Field(default=None, ge=0, le=200)
    pv_w: float | None = Field(default=None, ge=0, le=5000)
    pv_wh: float | None = Field(default=None, ge=0, le=100000)
    load_wh: float | None = Field(default=None, ge=0, le=100000)
    credit_s: int | None = Field(default=None, ge=0, description="credit remaining, seconds")
    locked: bool | None = None
    rssi: int | None = Field(default=None, ge=-150, le=0, description="GSM signal, dBm")
    fw: str | None = Field(default=None, max_length=32)


class TelemetryMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = PROTOCOL_VERSION
    serial: str = Field(min_length=1, max_length=64)
    readings: list[Reading] = Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], payload: bytes) -> M:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        kind = "invalid JSON" if first["type"] == "json_invalid" else "schema violation"
        raise ProtocolError(f"{kind}: {where}: {first['msg']}" if where else f"{kind}: {first['msg']}") from None


def parse_telemetry(payload: bytes, topic_serial: str) -> TelemetryMessage:
    """Validate a telemetry payload published on the topic of ``topic_serial``."""
    msg = _parse(TelemetryMessage, payload)
    if msg.serial != topic_serial:
        raise ProtocolError(f"serial {msg.serial!r} in payload differs from topic serial {topic_serial!r}")
    return msg


def encode_telemetry(serial: str, readings: list[Reading]) -> bytes:
    return TelemetryMessage(serial=serial, readings=readings).model_dump_json(exclude_none=True).encode()


EventKind = Literal["boot", "token", "tamper", "lvd", "reconnect", "buffer_overflow"]
MAX_EVENTS_PER_MESSAGE = 100


class DeviceEvent(BaseModel):
    """Something the firmware noticed: it booted, a token was entered (``result``: accepted,
    already_used, invalid, blocked), the enclosure was opened, the low-voltage disconnect tripped or
    released, or readings were lost to a full store-and-forward buffer (``dropped``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EventKind
    ts: AwareDatetime
    detail: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=16)


class EventMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = PROTOCOL_VERSION
    serial: str = Field(min_length=1, max_length=64)
    events: list[DeviceEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_MESSAGE)


def encode_events(serial: str, events: list[DeviceEvent]) -> bytes:
    return EventMessage(serial=serial, events=events).model_dump_json().encode()


def parse_events(payload: bytes, topic_serial: str) -> EventMessage:
    """Validate an events payload published on the topic of ``topic_serial``."""
    msg = _parse(EventMessage, payload)
    if msg.serial != topic_serial:
        raise ProtocolError(f"serial {msg.serial!r} in payload differs from topic serial {topic_serial!r}")
    return msg


def utc_iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


ONLINE = b"online"  # published retained on connect
OFFLINE = b"offline"  # the last will, and published on a clean disconnect


def encode_status(online: bool) -> bytes:
    return ONLINE if online else OFFLINE


def parse_status(payload: bytes) -> bool:
    """A unit's status message: ``online`` (sent on connect) or ``offline`` (its last will)."""
    text = payload.strip().lower()
    if text in (ONLINE, OFFLINE):
        return text == ONLINE
    raise ProtocolError(f"status {payload[:40]!r} is neither 'online' nor 'offline'")


TokenKind = Literal["add_time", "set_time", "disable_payg"]


class TokenCommand(BaseModel):
    """Platform → unit on ``.../cmd``: enter this OpenPAYGO token as if typed on the keypad. The
    dispatcher adds ``outbox_id``, which the unit echoes in its acknowledgement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["token"] = "token"
    token: str = Field(pattern=r"^[0-9]{9,15}$", description="the token's digits, leading zeros kept")
    token_type: TokenKind
    days: int = Field(ge=0, le=995)
    count: int = Field(ge=0)
    outbox_id: int | None = Field(default=None, ge=1)


class CommandAck(BaseModel):
    """Unit → platform on ``.../cmd/ack``: the command of ``outbox_id`` arrived (and whether the
    keypad accepted its token)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    outbox_id: int = Field(ge=1)
    accepted: bool | None = None


def encode_command(command: TokenCommand) -> str:
    return command.model_dump_json(exclude_none=True)


def parse_command(payload: bytes | str) -> TokenCommand:
    """A command as the unit receives it; ProtocolError when it is not one this version knows."""
    return _parse(TokenCommand, payload.encode() if isinstance(payload, str) else payload)


def encode_ack(outbox_id: int | None, accepted: bool) -> bytes:
    """The unit's answer to a command (``outbox_id`` None: the command carried none)."""
    return CommandAck.model_construct(outbox_id=outbox_id, accepted=accepted).model_dump_json().encode()


def parse_ack(payload: bytes) -> CommandAck:
    return _parse(CommandAck, payload)
