"""Device secrets at rest: keys derived by HKDF, every ciphertext tagged with its key id, the earlier
keys still accepted during a rotation, and the legacy ciphertexts (bare SHA-256 key) still readable."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

import pytest
from cryptography.fernet import Fernet, InvalidToken

from backoffice import crypto
from backoffice.config import SecretKey, load_settings

OLD = "s3cr3t-Of-the-FIRST-year-" + "7Gq2xLw9Rk4ZpT"
NEW = secrets.token_urlsafe(32)


def legacy_ciphertext(secret_key: str, plaintext: str) -> bytes:
    """What backoffice/crypto.py wrote before key ids: Fernet keyed by a bare SHA-256 of the secret key."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret_key.encode()).digest())).encrypt(plaintext.encode())


def test_round_trip_and_every_ciphertext_names_its_key() -> None:
    ciphertext = crypto.encrypt(NEW, "00112233445566778899aabbccddeeff")
    assert crypto.decrypt(NEW, ciphertext) == "00112233445566778899aabbccddeeff"
    kid, _, token = ciphertext.partition(b":")
    assert re.fullmatch(rb"[0-9a-f]{8}", kid) and kid.decode() == crypto.key_id(NEW) == crypto.key_id_of(ciphertext)
    assert token.startswith(b"gAAAAA")  # a Fernet token follows the id


def test_the_key_is_derived_not_a_bare_hash() -> None:
    """The bare SHA-256 Fernet of the old code no longer opens a new ciphertext (the key is HKDF's)."""
    token = crypto.encrypt(NEW, "secret").partition(b":")[2]
    with pytest.raises(InvalidToken):
        Fernet(base64.urlsafe_b64encode(hashlib.sha256(NEW.encode()).digest())).decrypt(token)
    assert crypto.key_id(NEW) != crypto.key_id(OLD)
    assert crypto.key_id(NEW) not in hashlib.sha256(NEW.encode()).hexdigest()  # the id gives nothing of the key away


def test_a_ciphertext_under_a_key_not_configured_names_its_key_id() -> None:
    ciphertext = crypto.encrypt(OLD, "the unit's key")
    with pytest.raises(crypto.DecryptionError) as err:
        crypto.decrypt(NEW, ciphertext)
    assert crypto.key_id(OLD) in str(err.value) and "PAYGO_OLD_SECRET_KEYS" in str(err.value)


def test_during_a_rotation_old_ciphertexts_decrypt_and_new_ones_use_the_current_key() -> None:
    both = SecretKey(NEW, [OLD])
    assert crypto.decrypt(both, crypto.encrypt(OLD, "written last year")) == "written last year"
    fresh = crypto.encrypt(both, "written today")
    assert crypto.key_id_of(fresh) == crypto.key_id(NEW)
    assert crypto.decrypt(NEW, fresh) == "written today"  # readable once the old key is gone


def test_the_settings_carry_the_old_keys_to_crypto() -> None:
    settings = load_settings(environment="test", secret_key=NEW, old_secret_keys=f" {OLD} , {NEW},{OLD},")
    assert crypto.configured_keys(settings.secret_key) == (NEW, OLD)
    copied = settings.model_copy(update={"database_url": "postgresql://elsewhere/db"})  # as the test fixtures do
    assert crypto.decrypt(copied.secret_key, crypto.encrypt(OLD, "x")) == "x"


def test_legacy_ciphertexts_still_decrypt_under_any_configured_key() -> None:
    legacy = legacy_ciphertext(OLD, "a key from before key ids")
    assert crypto.key_id_of(legacy) == crypto.LEGACY
    assert crypto.decrypt(OLD, legacy) == "a key from before key ids"
    assert crypto.decrypt(SecretKey(NEW, [OLD]), legacy) == "a key from before key ids"
    with pytest.raises(crypto.DecryptionError, match="legacy"):
        crypto.decrypt(NEW, legacy)


def test_an_altered_ciphertext_is_refused() -> None:
    ciphertext = bytearray(crypto.encrypt(NEW, "the unit's key"))
    ciphertext[-5] = ord("A") if ciphertext[-5] != ord("A") else ord("B")
    with pytest.raises(crypto.DecryptionError, match=crypto.key_id(NEW)):
        crypto.decrypt(NEW, bytes(ciphertext))
