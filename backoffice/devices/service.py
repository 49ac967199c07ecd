"""``paygo devices provision``: credentials for units that have none, written into the broker's
password file, and the broker told to re-read it (SIGHUP: no restart, no dropped connections).

The password file holds mosquitto's own hash format (``$7$``: PBKDF2-SHA512, 101 iterations, a
12-byte salt), so the plain password exists only encrypted in the database (for the unit's
provisioning and the simulator) and never on the broker's disk.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

import psycopg

from backoffice import crypto
from backoffice.devices import repository

ITERATIONS = 101  # mosquitto_passwd's default


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def provision(conn: psycopg.Connection, secret_key: str, serials: list[str] | None = None) -> dict[str, str]:
    """New credentials for units without any (or only the given serials); returns serial -> password."""
    issued = {}
    for unit_id, serial in repository.units_without_credentials(conn, serials):
        password = secrets.token_urlsafe(18)
        repository.set_credentials(conn, unit_id, crypto.encrypt(secret_key, password), mosquitto_hash(password))
        issued[serial] = password
    return issued


def write_password_file(conn: psycopg.Connection, path: Path) -> int:
    """The broker's password file, replaced atomically (the broker never reads half a file)."""
    lines = repository.password_lines(conn)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.writelines(f"{serial}:{hashed}\n" for serial, hashed in lines)
    partial.replace(path)
    return len(lines)


def password(conn: psycopg.Connection, secret_key: str, serial: str) -> str | None:
    enc = repository.password_of(conn, serial)
    return None if enc is None else crypto.decrypt(secret_key, enc)
