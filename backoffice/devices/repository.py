"""All SQL of device credentials."""

from __future__ import annotations

import psycopg


def units_without_credentials(conn: psycopg.Connection, serials: list[str] | None = None) -> list[tuple[int, str]]:
    rows = conn.execute(
        """select id, serial from units where mqtt_password_hash is null
           and (%(serials)s::text[] is null or serial = any(%(serials)s)) order by id for update""",
        {"serials": serials},
    ).fetchall()
    return [(int(i), str(s)) for i, s in rows]


def set_credentials(conn: psycopg.Connection, unit_id: int, password_enc: bytes, password_hash: str) -> None:
    conn.execute(
        "update units set mqtt_password_enc = %s, mqtt_password_hash = %s where id = %s",
        (password_enc, password_hash, unit_id),
    )


def password_lines(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(serial, hash) of every unit allowed on the broker (retired units are not)."""
    rows = conn.execute(
        "select serial, mqtt_password_hash from units where mqtt_password_hash is not null and state <> 'retired' "
        "order by serial"
    ).fetchall()
    return [(str(s), str(h)) for s, h in rows]


def password_of(conn: psycopg.Connection, serial: str) -> bytes | None:
    row = conn.execute("select mqtt_password_enc from units where serial = %s", (serial,)).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])
