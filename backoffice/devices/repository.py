"""All SQL of device credentials, and of the device secrets' ciphertexts (their key ids, their rotation)."""

from __future__ import annotations

import psycopg
from psycopg import sql


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
    """(serial, hash) of every unit allowed on the broker (retired and written-off units are not)."""
    rows = conn.execute(
        "select serial, mqtt_password_hash from units where mqtt_password_hash is not null "
        "and state not in ('retired', 'written_off') order by serial"
    ).fetchall()
    return [(str(s), str(h)) for s, h in rows]


def broker_logins(conn: psycopg.Connection) -> list[tuple[str, bytes]]:
    """(serial, encrypted password) of every unit allowed on the broker (as password_lines)."""
    rows = conn.execute(
        "select serial, mqtt_password_enc from units where mqtt_password_hash is not null "
        "and mqtt_password_enc is not null and state not in ('retired', 'written_off') order by serial"
    ).fetchall()
    return [(str(s), bytes(e)) for s, e in rows]


def password_of(conn: psycopg.Connection, serial: str) -> bytes | None:
    row = conn.execute("select mqtt_password_enc from units where serial = %s", (serial,)).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


# Every column that holds a backoffice.crypto ciphertext (``<key id>:<token>``, or a legacy token
# without a key id): a unit's OpenPAYGO key and its MQTT password. `paygo secrets` walks these.
ENCRYPTED_COLUMNS = ("openpaygo_key_enc", "mqtt_password_enc")


def ciphertexts_by_key_id(conn: psycopg.Connection, column: str) -> dict[str | None, int]:
    """How many of the column's ciphertexts are under each key id (None: legacy, no key id)."""
    rows = conn.execute(
        sql.SQL(
            """select case when position('\\x3a'::bytea in {c}) > 0
                           then encode(substring({c} from 1 for position('\\x3a'::bytea in {c}) - 1), 'escape')
                      end, count(*)
                 from units where {c} is not null group by 1"""
        ).format(c=sql.Identifier(column))
    ).fetchall()
    return {k: int(n) for k, n in rows}


def count_ciphertexts_not_under(conn: psycopg.Connection, column: str, key_id: str) -> int:
    row = conn.execute(
        sql.SQL("select count(*) from units where {c} is not null and substring({c} from 1 for %s) <> %s").format(
            c=sql.Identifier(column)
        ),
        (len(key_id) + 1, f"{key_id}:".encode()),
    ).fetchone()
    return int(row[0]) if row else 0


def ciphertexts_not_under(
    conn: psycopg.Connection, column: str, key_id: str, after_id: int, limit: int
) -> list[tuple[int, bytes]]:
    """The next ``limit`` (unit id, ciphertext) of the column not under ``key_id``, by unit id, locked
    until the transaction ends (a provisioning cannot write between our read and our rewrite)."""
    rows = conn.execute(
        sql.SQL(
            """select id, {c} from units
                where {c} is not null and substring({c} from 1 for %(n)s) <> %(prefix)s and id > %(after)s
                order by id limit %(limit)s for no key update"""
        ).format(c=sql.Identifier(column)),
        {"n": len(key_id) + 1, "prefix": f"{key_id}:".encode(), "after": after_id, "limit": limit},
    ).fetchall()
    return [(int(i), bytes(c)) for i, c in rows]


def set_ciphertexts(conn: psycopg.Connection, column: str, rows: list[tuple[int, bytes]]) -> None:
    """Replace the column's ciphertext of each (unit id, ciphertext)."""
    conn.execute(
        sql.SQL(
            "update units u set {c} = v.ciphertext from unnest(%s::bigint[], %s::bytea[]) as v(id, ciphertext) "
            "where u.id = v.id"
        ).format(c=sql.Identifier(column)),
        ([i for i, _ in rows], [c for _, c in rows]),
    )
