"""Registry operations: register units with their OpenPAYGO secrets; account numbers with a check digit."""

from __future__ import annotations

import secrets
from datetime import datetime

import psycopg
from stdnum import luhn

import protocol
from backoffice import crypto
from backoffice.registry import repository


def account_number(sequence: int) -> str:
    """Customer-facing account number: 7 digits and a Luhn check digit, so a typo is caught."""
    base = f"{sequence:07d}"
    return base + luhn.calc_check_digit(base)


def is_valid_account_number(text: str) -> bool:
    return text.isdigit() and len(text) == 8 and luhn.is_valid(text)


class UnitSerialError(ValueError):
    """A serial no unit may have; the message says why."""


def new_key() -> tuple[str, int]:
    """A fresh OpenPAYGO secret (32 hex digits) and starting code (9 digits)."""
    return secrets.token_hex(16), secrets.randbelow(900_000_000) + 100_000_000


def register_unit(
    conn: psycopg.Connection,
    secret_key: str,
    serial: str,
    product_id: int,
    lat: float | None = None,
    lon: float | None = None,
    installed_at: datetime | None = None,
) -> int:
    """A new unit with its own OpenPAYGO secret (encrypted at rest) and starting code; a serial in the
    form of a service's MQTT client id is refused (UnitSerialError)."""
    if reason := protocol.reserved_serial(serial):
        raise UnitSerialError(reason)
    key_hex, starting_code = new_key()
    return repository.insert_unit(
        conn, serial, product_id, crypto.encrypt(secret_key, key_hex), starting_code, lat, lon, installed_at
    )
