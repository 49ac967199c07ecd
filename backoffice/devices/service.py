"""``paygo devices provision``: credentials for units that have none, written into the broker's
password file, and the broker told to re-read it (SIGHUP: no restart, no dropped connections).

The password file holds mosquitto's own hash format (``$7$``: PBKDF2-SHA512, 101 iterations, a
12-byte salt), so the plain password exists only encrypted in the database (for the unit's
provisioning and the simulator) and never on the broker's disk.

``paygo secrets``: which key the device secrets (OpenPAYGO keys, MQTT passwords) are encrypted under,
and their rotation to the current key.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

import protocol
from backoffice import crypto
from backoffice.audit import repository as audit
from backoffice.audit.schemas import Actor
from backoffice.devices import repository

log = logging.getLogger(__name__)

ITERATIONS = 101  # mosquitto_passwd's default


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def provision(conn: psycopg.Connection, secret_key: str, serials: list[str] | None = None) -> dict[str, str]:
    """New credentials for units without any (or only the given serials); returns serial -> password."""
    issued = {}
    for unit_id, serial in repository.units_without_credentials(conn, serials):
        if reason := protocol.reserved_serial(serial):  # registered before the rule: never a broker login
            log.warning("unit %s gets no MQTT login: %s", unit_id, reason)
            continue
        password = secrets.token_urlsafe(18)
        repository.set_credentials(conn, unit_id, crypto.encrypt(secret_key, password), mosquitto_hash(password))
        issued[serial] = password
    return issued


def write_password_file(conn: psycopg.Connection, path: Path) -> int:
    """The broker's password file, replaced atomically (the broker never reads half a file)."""
    lines = [(s, h) for s, h in repository.password_lines(conn) if protocol.reserved_serial(s) is None]
    partial = path.with_name(path.name + ".partial")
    with partial.open("w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.writelines(f"{serial}:{hashed}\n" for serial, hashed in lines)
    partial.replace(path)
    return len(lines)


def broker_logins(conn: psycopg.Connection, secret_key: str) -> list[tuple[str, str]]:
    """(serial, password) of every unit allowed on the broker, for its dynamic-security plugin
    (backoffice.devices.broker.sync), which takes plain passwords and hashes them itself."""
    return [
        (serial, crypto.decrypt(secret_key, enc))
        for serial, enc in repository.broker_logins(conn)
        if protocol.reserved_serial(serial) is None
    ]


def password(conn: psycopg.Connection, secret_key: str, serial: str) -> str | None:
    enc = repository.password_of(conn, serial)
    return None if enc is None else crypto.decrypt(secret_key, enc)


@dataclass(frozen=True)
class KeyCount:
    column: str  # one of repository.ENCRYPTED_COLUMNS
    key_id: str  # crypto.LEGACY for ciphertexts without a key id
    state: str  # "current", "old" (in PAYGO_OLD_SECRET_KEYS), "legacy" or "not configured"
    count: int


def key_counts(conn: psycopg.Connection, secret_key: str) -> list[KeyCount]:
    """How many device secrets are under each key id, column by column."""
    current, *old = (crypto.key_id(k) for k in crypto.configured_keys(secret_key))
    out = []
    for column in repository.ENCRYPTED_COLUMNS:
        for kid, count in sorted(repository.ciphertexts_by_key_id(conn, column).items(), key=lambda kv: kv[0] or ""):
            key = kid or crypto.LEGACY
            state = (
                "current" if key == current else "old" if key in old else "legacy" if kid is None else "not configured"
            )
            out.append(KeyCount(column, key, state, count))
    return out


def rotation_pending(conn: psycopg.Connection, secret_key: str) -> int:
    """How many device secrets are not under the current key (what a rotation would rewrite)."""
    current = crypto.key_id(secret_key)
    return sum(repository.count_ciphertexts_not_under(conn, c, current) for c in repository.ENCRYPTED_COLUMNS)


def rotate(
    conn: psycopg.Connection, secret_key: str, actor: Actor, advance: Callable[[int], None] = lambda n: None,
    batch: int = 500,
) -> dict[str, int]:  # fmt: skip
    """Re-encrypt under the current key every device secret that is not (legacy ones included), in the
    caller's transaction; returns column -> rewritten. Run again, it rewrites nothing. A secret that no
    configured key decrypts stops it with crypto.DecryptionError naming the unit and the key id."""
    current = crypto.key_id(secret_key)
    done = {}
    for column in repository.ENCRYPTED_COLUMNS:
        after, rewritten = 0, 0
        while rows := repository.ciphertexts_not_under(conn, column, current, after, batch):
            fresh = []
            for unit_id, ciphertext in rows:
                try:
                    fresh.append((unit_id, crypto.encrypt(secret_key, crypto.decrypt(secret_key, ciphertext))))
                except crypto.DecryptionError as err:
                    raise crypto.DecryptionError(f"unit {unit_id}'s {column}: {err}") from None
            repository.set_ciphertexts(conn, column, fresh)
            after, rewritten = rows[-1][0], rewritten + len(rows)
            advance(len(rows))
        done[column] = rewritten
    if any(done.values()):
        audit.record(conn, actor, "secrets.rotate", "units", after={"key_id": current, **done})
    return done
