"""``paygo secrets``: with the old key and the new one configured, a rotation re-encrypts every device
secret (legacy ones included) under the new key in one transaction; then the old key can go, and the
units' keys and MQTT passwords still decrypt and their tokens still open the units."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import date

import psycopg
import pytest

from backoffice import crypto
from backoffice.config import Settings
from backoffice.credit.service import apply_payment
from backoffice.devices import repository
from backoffice.devices import service as devices
from tests.backoffice.test_crypto import legacy_ciphertext
from tests.support.money import Account, Device, make_accounts, make_products

OLD = secrets.token_urlsafe(32)
NEW = secrets.token_urlsafe(32)
COLUMNS = repository.ENCRYPTED_COLUMNS


def _paygo(settings: Settings, *args: str, old: str | None = OLD) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PAYGO_OLD_SECRET_KEYS"}
    env |= {"PAYGO_ENVIRONMENT": "test", "PAYGO_DATABASE_URL": settings.database_url, "PAYGO_SECRET_KEY": NEW}
    if old is not None:
        env["PAYGO_OLD_SECRET_KEYS"] = old
    return subprocess.run([sys.executable, "-m", "paygo.cli", "secrets", *args], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def _by_key_id(conn: psycopg.Connection) -> dict[str, dict[str | None, int]]:
    return {column: repository.ciphertexts_by_key_id(conn, column) for column in COLUMNS}


def _ciphertexts(conn: psycopg.Connection) -> list[tuple[bytes | None, bytes | None]]:
    rows = conn.execute("select openpaygo_key_enc, mqtt_password_enc from units order by id").fetchall()
    return [(None if k is None else bytes(k), None if p is None else bytes(p)) for k, p in rows]


@pytest.fixture
def fleet(settings: Settings, conn: psycopg.Connection) -> tuple[list[Account], dict[str, str]]:
    """Four units whose keys and MQTT passwords were encrypted under OLD: some tagged with OLD's key
    id, some legacy (written before key ids); committed, for the command to see."""
    conn.autocommit = True  # each statement its own transaction: the command's updates must not wait on us
    _, flexible = make_products(conn)
    accounts = make_accounts(conn, settings.model_copy(update={"secret_key": OLD}), flexible, 4, "ROT")
    passwords = devices.provision(conn, OLD)
    for acct in accounts[2:]:
        conn.execute("update units set openpaygo_key_enc = %s where id = %s",
                     (legacy_ciphertext(OLD, acct.key), acct.unit_id))  # fmt: skip
    last = accounts[3]
    conn.execute("update units set mqtt_password_enc = %s where id = %s",
                 (legacy_ciphertext(OLD, passwords[last.serial]), last.unit_id))  # fmt: skip
    return accounts, passwords


def test_rotate_moves_everything_to_the_new_key_and_the_old_key_can_go(
    settings: Settings, conn: psycopg.Connection, fleet: tuple[list[Account], dict[str, str]]
) -> None:
    accounts, passwords = fleet
    old_id, new_id = crypto.key_id(OLD), crypto.key_id(NEW)
    assert _by_key_id(conn) == {"openpaygo_key_enc": {old_id: 2, None: 2}, "mqtt_password_enc": {old_id: 3, None: 1}}
    status = _paygo(settings, "status")
    assert status.returncode == 0, status.stderr
    assert f"current key id {new_id}; old key ids {old_id}" in status.stdout and "8 to rotate" in status.stdout

    rotated = _paygo(settings, "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert f"re-encrypted 8 under key id {new_id} (OpenPAYGO keys 4, MQTT passwords 4)" in rotated.stdout
    assert _by_key_id(conn) == {"openpaygo_key_enc": {new_id: 4}, "mqtt_password_enc": {new_id: 4}}
    after = _ciphertexts(conn)
    audit = conn.execute("select actor, after from audit_log where action = 'secrets.rotate'").fetchall()
    assert len(audit) == 1 and audit[0][0].startswith("cli:") and audit[0][1]["key_id"] == new_id

    # The old key leaves the configuration: every secret still decrypts, with the new key alone.
    for acct in accounts:
        key_enc = conn.execute("select openpaygo_key_enc from units where id = %s", (acct.unit_id,)).fetchone()
        assert key_enc is not None and crypto.decrypt(NEW, key_enc[0]) == acct.key
        assert devices.password(conn, NEW, acct.serial) == passwords[acct.serial]
    with conn.transaction():  # and a payment still gets a token that opens the unit (the official decoder)
        credited = apply_payment(conn, accounts[2].contract_id, 50_000, date(2026, 11, 1), NEW)
    device = Device(accounts[2])
    assert [t["days"] for t in credited.tokens] == [7] and device.enter(str(credited.tokens[0]["token"]))
    assert device.days == 7

    again = _paygo(settings, "rotate")  # idempotent: nothing to rewrite, nothing rewritten
    assert again.returncode == 0 and f"re-encrypted 0 under key id {new_id}" in again.stdout, again.stderr
    assert _ciphertexts(conn) == after
    alone = _paygo(settings, "status", old=None)
    assert alone.returncode == 0 and "everything is under the current key" in alone.stdout, alone.stderr


def test_a_key_not_configured_stops_the_rotation_and_nothing_is_rewritten(
    settings: Settings, conn: psycopg.Connection, fleet: tuple[list[Account], dict[str, str]]
) -> None:
    accounts, _ = fleet
    # The first unit's key is legacy under NEW (it would rotate), the second's is under OLD (it cannot).
    conn.execute("update units set openpaygo_key_enc = %s where id = %s",
                 (legacy_ciphertext(NEW, accounts[0].key), accounts[0].unit_id))  # fmt: skip
    before = _ciphertexts(conn)
    failed = _paygo(settings, "rotate", old=None)
    assert failed.returncode == 1
    assert f"key id {crypto.key_id(OLD)}, which is not configured" in failed.stderr, failed.stderr
    assert f"unit {accounts[1].unit_id}'s openpaygo_key_enc" in failed.stderr
    assert _ciphertexts(conn) == before  # one transaction: the first unit was not rewritten either
    status = _paygo(settings, "status", old=None)
    assert f"{crypto.key_id(OLD)} │ not configured" in status.stdout, status.stdout
