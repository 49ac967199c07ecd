"""OpenPAYGO Metrics units as staff see and steer them: the "move these units to another server"
action (the specification's ``base_url`` setting, sent, signed, in each answer the unit gets from
then on; audited), and the Metrics panel of a unit's page (``unit_panel``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import AfterValidator, BaseModel, Field

from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from protocol.messages import check_text

MAX_UNITS_PER_MOVE = 1000
# An absolute http(s) URL without spaces or control characters (a device stores it as is).
BASE_URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f]{1,200}$"


Serial = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_text)]
BaseUrl = Annotated[str, Field(pattern=BASE_URL_PATTERN), AfterValidator(check_text)]


class MoveRequest(BaseModel):
    serials: list[Serial] = Field(min_length=1, max_length=MAX_UNITS_PER_MOVE)
    base_url: BaseUrl | None = Field(description="null: cancel a move not yet sent")


class ExtraDataRequest(BaseModel):
    serials: list[Serial] = Field(min_length=1, max_length=MAX_UNITS_PER_MOVE)
    extra_data: dict[str, Any] | None = Field(description="device-specific data for the units' answers; null: none")


class MoveResult(BaseModel):
    moved: list[str]
    unknown: list[str]


class MetricsPanel(BaseModel):
    """What a unit's page shows of its OpenPAYGO Metrics reporting (None: it never reported so)."""

    serial: str
    last_request_at: datetime | None
    last_auth_method: str | None  # sa, ta, ca, da, ra, or jwt
    data_format_id: int | None
    data_format_variables: dict[str, Any]
    last_request_count: int | None
    last_request_timestamp: int | None
    base_url: str | None  # the server the unit is being moved to
    base_url_set_at: datetime | None
    base_url_sent_at: datetime | None  # the last answer that carried it (None: not sent yet)
    readings_with_extra: int  # its readings holding values no telemetry column has


def move_units(conn: psycopg.Connection, serials: list[str], base_url: str | None, actor: Actor) -> MoveResult:
    """Tell these units (in their next answers) to report to ``base_url`` from now on, or cancel that
    (None); one audit row per unit, with the URL before and after."""
    rows = conn.execute(
        """select u.id, u.serial, m.base_url from units u left join metrics_state m on m.unit_id = u.id
           where u.serial = any(%s) order by u.serial for no key update of u""",
        (list(dict.fromkeys(serials)),),
    ).fetchall()
    for unit_id, _, before in rows:
        conn.execute(
            """insert into metrics_state (unit_id, base_url, base_url_set_at) values (%s, %s, paygo_now())
               on conflict (unit_id) do update set base_url = excluded.base_url, base_url_set_at = paygo_now(),
                                                   base_url_sent_at = null, updated_at = paygo_now()""",
            (unit_id, base_url),
        )
        audit.record(conn, actor, "metrics.move", "unit", unit_id, {"base_url": before}, {"base_url": base_url})
    found = {serial for _, serial, _ in rows}
    return MoveResult(moved=sorted(found), unknown=sorted(set(serials) - found))


def set_extra_data(
    conn: psycopg.Connection, serials: list[str], extra_data: dict[str, Any] | None, actor: Actor
) -> MoveResult:
    """The ``extra_data`` sent (signed) in each answer these units get from now on (None: none); one
    audit row per unit."""
    if extra_data is not None:
        _storable(extra_data)
    rows = conn.execute(
        """select u.id, u.serial, m.extra_data from units u left join metrics_state m on m.unit_id = u.id
           where u.serial = any(%s) order by u.serial for no key update of u""",
        (list(dict.fromkeys(serials)),),
    ).fetchall()
    for unit_id, _, before in rows:
        conn.execute(
            """insert into metrics_state (unit_id, extra_data) values (%s, %s)
               on conflict (unit_id) do update set extra_data = excluded.extra_data, updated_at = paygo_now()""",
            (unit_id, None if extra_data is None else Jsonb(extra_data)),
        )
        audit.record(conn, actor, "metrics.extra_data", "unit", unit_id, {"extra_data": before},
                     {"extra_data": extra_data})  # fmt: skip
    found = {serial for _, serial, _ in rows}
    return MoveResult(moved=sorted(found), unknown=sorted(set(serials) - found))


def _storable(value: object, depth: int = 0) -> None:
    """JSON that jsonb holds and a device can take: text without NUL, finite numbers, shallow."""
    if depth > 4:
        raise ValueError("extra_data is nested too deep")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("extra_data holds a number out of range")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_text(k)
            _storable(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _storable(v, depth + 1)


def unit_panel(conn: psycopg.Connection, unit_id: int) -> MetricsPanel | None:
    """The Metrics panel of a unit, or None if it has never reported over OpenPAYGO Metrics and is
    not being moved (rendered by templates/panels/metrics.html as ``panel``)."""
    row = conn.execute(
        """select u.serial, m.last_request_at, m.last_auth_method, m.last_data_format, coalesce(f.variables, '{}'),
                  m.last_request_count, m.last_request_timestamp, m.base_url, m.base_url_set_at, m.base_url_sent_at,
                  (select count(*) from telemetry t where t.unit_id = u.id and t.extra is not null)
           from units u join metrics_state m on m.unit_id = u.id
                left join metrics_data_formats f on f.id = m.last_data_format
           where u.id = %s""",
        (unit_id,),
    ).fetchone()
    if row is None:
        return None
    names = ("serial", "last_request_at", "last_auth_method", "data_format_id", "data_format_variables",
             "last_request_count", "last_request_timestamp", "base_url", "base_url_set_at", "base_url_sent_at",
             "readings_with_extra")  # fmt: skip
    return MetricsPanel(**dict(zip(names, row, strict=True)))
