"""Device messages of the wire protocol (docs/wire_protocol.md): telemetry, events, status, and the token
commands the platform sends with the units' acknowledgements.

Pure functions only: no broker, no database. Every producer and consumer (the simulator, ingest,
credit, delivery) builds and parses messages with this module, so all speak the same version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from protocol.topics import ProtocolError

PROTOCOL_VERSION: Literal[1] = 1
# A message larger than this is refused before it is parsed (a store-and-forward flush of
# 500 readings is about 120 kB).
MAX_MESSAGE_BYTES = 256 * 1024
MAX_READINGS_PER_MESSAGE = 500
# The firmware counts credit in a 32-bit register of seconds (136 years): anything above is not a
# unit's credit, and the column (int8) could not hold 2^63.
MAX_CREDIT_S = 2**32 - 1
# A unit's clock before this has not been set (no unit of ours ran then); after this it is garbage.
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TS = datetime(2100, 1, 1, tzinfo=UTC)
# An event's detail: a few small values, so that the row (and its unique index) stays small.
MAX_DETAIL_ITEMS = 16
MAX_DETAIL_KEY = 32
MAX_DETAIL_TEXT = 128
MAX_DETAIL_BYTES = 1024
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1


def safe_text(text: str, limit: int = 2000) -> str:
    """``text`` as PostgreSQL text can hold it (a reject's reason quotes what a unit sent): NUL and
    lone surrogates written as escapes, at most ``limit`` characters."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:limit]


def check_text(value: str) -> str:
    """``value``, or ValueError if it holds what PostgreSQL text cannot store (NUL) or UTF-8 cannot
    encode (a lone surrogate)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone surrogate") from None
    return value


def _plausible_time(ts: datetime) -> datetime:
    """Refuse a timestamp outside [EARLIEST_TS, LATEST_TS) (a clock never set, or garbage)."""
    try:
        utc = ts.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None
    if not EARLIEST_TS <= utc < LATEST_TS:
        raise ValueError(f"timestamp {ts.isoformat()} is outside {EARLIEST_TS:%Y-%m-%d}..{LATEST_TS:%Y-%m-%d}")
    return ts


Text = Annotated[str, AfterValidator(check_text)]
Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible_time)]


class Reading(BaseModel):
    """One telemetry sample. Energies are Wh during the interval that ends at ``ts``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seq: int = Field(ge=0, lt=2**62, description="per-device monotonic sequence number")
    ts: Timestamp
    batt_v: float | None = Field(default=None, ge=0, le=100, description="battery voltage, V")
    batt_a: float | None = Field(default=None, ge=-200, le=200, description="battery current, A (+ charging)")
    soc: float | None = Field(default=None, ge=0, le=1, description="state of charge, 0..1")
    batt_temp_c: float | None = Field(default=None, ge=-40, le=120)
    pv_v: float | None = Field(default=None, ge=0, le=200)
    pv_w: float | None = Field(default=None, ge=0, le=5000)
    pv_wh: float | None = Field(default=None, ge=0, le=100000)
    load_wh: float | None = Field(default=None, ge=0, le=100000)
    credit_s: int | None = Field(default=None, ge=0, le=MAX_CREDIT_S, description="credit remaining, seconds")
    locked: bool | None = None
    rssi: int | None = Field(default=None, ge=-150, le=0, description="GSM signal, dBm")
    fw: Text | None = Field(default=None, max_length=32)


class TelemetryMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = PROTOCOL_VERSION
    serial: Text = Field(min_length=1, max_length=64)
    readings: list[Reading] = Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)


M = TypeVar("M", bound=BaseModel)


def _reason(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    kind = "invalid JSON" if first["type"] == "json_invalid" else "schema violation"
    reason = f"{kind}: {where}: {first['msg']}" if where else f"{kind}: {first['msg']}"
    return safe_text(reason)  # a key the unit sent may hold a NUL


def _parse(model: type[M], payload: bytes) -> M:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as err:
        raise ProtocolError(_reason(err)) from None


def validate_reading(values: Mapping[str, object]) -> Reading:
    """A reading from values that did not come as our JSON (an OpenPAYGO Metrics step): the same
    schema and ranges as a telemetry message's readings; ProtocolError with the reason otherwise."""
    try:
        return Reading.model_validate(values)
    except ValidationError as err:
        raise ProtocolError(_reason(err)) from None


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


def _check_detail(detail: dict[str, str | int | float | bool]) -> dict[str, str | int | float | bool]:
    """Keys and text short and storable, whole numbers within int8, floats finite, and the whole
    small enough for the row's unique index (one event per unit, time, kind and detail)."""
    for key, value in detail.items():
        if not 1 <= len(key) <= MAX_DETAIL_KEY:
            raise ValueError(f"detail key {key[:40]!r} does not have 1 to {MAX_DETAIL_KEY} characters")
        try:
            check_text(key)
        except ValueError as err:
            raise ValueError(f"detail key {key!r} {err}") from None
        if isinstance(value, str):
            if len(value) > MAX_DETAIL_TEXT:
                raise ValueError(f"detail {key!r}: longer than {MAX_DETAIL_TEXT} characters")
            try:
                check_text(value)
            except ValueError as err:
                raise ValueError(f"detail {key!r}: {err}") from None
        elif isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if not INT8_MIN <= value <= INT8_MAX:
                raise ValueError(f"detail {key!r}: integer out of range")
        elif not math.isfinite(value):
            raise ValueError(f"detail {key!r}: not a finite number")
    if len(json.dumps(detail, ensure_ascii=False).encode()) > MAX_DETAIL_BYTES:
        raise ValueError(f"detail larger than {MAX_DETAIL_BYTES} bytes")
    return detail


class DeviceEvent(BaseModel):
    """Something the firmware noticed: it booted, a token was entered (``result``: accepted,
    already_used, invalid, blocked), the enclosure was opened, the low-voltage disconnect tripped or
    released, or readings were lost to a full store-and-forward buffer (``dropped``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EventKind
    ts: Timestamp
    detail: Annotated[dict[str, str | int | float | bool], AfterValidator(_check_detail)] = Field(
        default_factory=dict, max_length=MAX_DETAIL_ITEMS
    )


class EventMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = PROTOCOL_VERSION
    serial: Text = Field(min_length=1, max_length=64)
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
