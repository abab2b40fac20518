"""Personal data at rest: AES-GCM under rotatable keys, plus a keyed hash for lookups.

A stored value reads `<key id>:<base64url(nonce || ciphertext)>`, so rows written under an
old key stay readable until `mobimart rotate-keys` re-encrypts them under the first key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from mobimart.settings import get_settings

_AAD = b"mobimart-pii-v1"
_NONCE_BYTES = 12


class KeyError_(ValueError):
    """A stored value names a key that is not configured, or the key material is bad."""


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, material = item.partition(":")
        if not sep or not key_id or ":" in material:
            raise KeyError_("each PII key is written key_id:base64url(32 bytes)")
        raw = _b64decode(material)
        if len(raw) != 32:
            raise KeyError_(f"PII key {key_id!r} must be 32 bytes, got {len(raw)}")
        keys.append((key_id, raw))
    if not keys:
        raise KeyError_("at least one PII key is required")
    if len({key_id for key_id, _ in keys}) != len(keys):
        raise KeyError_("PII key ids must be unique")
    return keys


def new_key_spec(key_id: str) -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"


class Vault:
    def __init__(self, keys_spec: str, hash_key: str) -> None:
        keys = parse_keys(keys_spec)
        self.primary_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(raw) for key_id, raw in keys}
        self._hash_key = hash_key.encode()

    def encrypt_bytes(self, data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self.primary_id].encrypt(nonce, data, _AAD)
        return self.primary_id.encode() + b":" + nonce + sealed

    def decrypt_bytes(self, blob: bytes) -> bytes:
        key_id, sep, rest = blob.partition(b":")
        cipher = self._ciphers.get(key_id.decode(errors="replace"))
        if not sep or cipher is None:
            raise KeyError_(f"no PII key {key_id.decode(errors='replace')!r} is configured")
        return cipher.decrypt(rest[:_NONCE_BYTES], rest[_NONCE_BYTES:], _AAD)

    def encrypt(self, text: str) -> str:
        blob = self.encrypt_bytes(text.encode())
        key_id, _, rest = blob.partition(b":")
        return f"{key_id.decode()}:{base64.urlsafe_b64encode(rest).decode()}"

    def decrypt(self, token: str) -> str:
        key_id, _, rest = token.partition(":")
        return self.decrypt_bytes(key_id.encode() + b":" + _b64decode(rest)).decode()

    def key_id_of(self, token: str | bytes) -> str:
        if isinstance(token, bytes):
            return token.partition(b":")[0].decode(errors="replace")
        return token.partition(":")[0]

    def lookup_hash(self, value: str) -> str:
        """Deterministic, keyed: equal values find each other; the table alone reveals nothing."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()


@lru_cache
def get_vault() -> Vault:
    settings = get_settings()
    return Vault(settings.pii_keys.get_secret_value(), settings.pii_hash_key.get_secret_value())


class Encrypted(TypeDecorator[str]):
    """A text column whose value is encrypted on write and decrypted on read."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else get_vault().encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else get_vault().decrypt(value)
