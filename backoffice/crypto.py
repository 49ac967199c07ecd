"""Encryption of device secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from
PAYGO_SECRET_KEY by HKDF (``config.derive_key``), every ciphertext tagged with the id of its key.

Stored form: ``<key id>:<Fernet token>``, the key id being 8 hex digits derived from the secret key
with a context of its own (it names the key and tells nothing of it). Decryption picks the key by
its id among the current key and PAYGO_OLD_SECRET_KEYS (a ``config.SecretKey``), so a rotation
(``paygo secrets rotate``) can run while both are configured. Ciphertexts written before key ids
(a bare Fernet token, whose key was a plain SHA-256 of the secret key) are "legacy": they still
decrypt under any configured key, and a rotation rewrites them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from backoffice.config import SecretKey, derive_key

LEGACY = "legacy"  # what key_id_of says of a ciphertext without a key id
_SEP = b":"  # never part of a Fernet token (URL-safe base64), so a legacy token has none


class DecryptionError(ValueError):
    """A ciphertext that no configured key decrypts; the message names the key id it was written under."""


@dataclass(frozen=True)
class _Key:
    id: str
    fernet: Fernet
    legacy: Fernet  # the Fernet of ciphertexts written before key ids


@functools.lru_cache(maxsize=32)
def _key(secret: str) -> _Key:
    fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret, "device-secrets/fernet")))
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))
    return _Key(derive_key(secret, "device-secrets/key-id", 4).hex(), fernet, legacy)


def configured_keys(secret_key: str) -> tuple[str, ...]:
    """The current key first, then the earlier ones still accepted for decryption."""
    old = secret_key.old if isinstance(secret_key, SecretKey) else ()
    return (str(secret_key), *old)


def key_id(secret_key: str) -> str:
    """The id of the (current) key, as it prefixes the ciphertexts written under it."""
    return _key(str(secret_key)).id


def key_id_of(ciphertext: bytes) -> str:
    """The id of the key a ciphertext was written under, or LEGACY."""
    kid, sep, _ = bytes(ciphertext).partition(_SEP)
    return kid.decode("ascii", "backslashreplace") if sep else LEGACY


def encrypt(secret_key: str, plaintext: str) -> bytes:
    key = _key(str(secret_key))
    return key.id.encode() + _SEP + key.fernet.encrypt(plaintext.encode())


def decrypt(secret_key: str, ciphertext: bytes) -> str:
    data = bytes(ciphertext)
    kid, sep, token = data.partition(_SEP)
    keys = [_key(k) for k in configured_keys(secret_key)]
    if sep:
        label = kid.decode("ascii", "backslashreplace")
        candidates = [k.fernet for k in keys if k.id == label]
        if not candidates:
            raise DecryptionError(
                f"a ciphertext under key id {label}, which is not configured (configured: "
                f"{', '.join(k.id for k in keys)}): put the key it was written with in PAYGO_OLD_SECRET_KEYS"
            )
    else:
        label, token = f"{LEGACY} (no key id)", data
        candidates = [k.legacy for k in keys]
    for fernet in candidates:  # one, unless two configured keys share an id (1 in 4 billion)
        try:
            return fernet.decrypt(token).decode()
        except InvalidToken:
            continue
    raise DecryptionError(f"a ciphertext under key id {label} that no configured key decrypts (altered or foreign)")
