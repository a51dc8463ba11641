"""Secrets at rest (K3) and one-way token hashing.

Secrets are sealed with AES-256-GCM under a key ring read from ``SLOTBOOK_ENCRYPTION_KEYS``:
comma-separated base64url keys, newest first. Each ciphertext names the id of the key that
sealed it, so old ciphertexts stay readable after a new key is put in front. API and feed
tokens are never stored: only their SHA-256 is, because they are long random strings.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "v1"


class DecryptionError(ValueError):
    """A sealed value could not be opened: unknown key id, tampering or a malformed value."""


def generate_key() -> str:
    """A new random 256-bit key in the format ``SLOTBOOK_ENCRYPTION_KEYS`` expects."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def _decode_key(text: str) -> bytes:
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded)
    except ValueError as exc:
        raise ValueError("an encryption key is not valid base64url") from exc
    if len(raw) != 32:
        raise ValueError("each encryption key must decode to 32 bytes")
    return raw


@dataclass(frozen=True)
class KeyRing:
    """Keys newest first; the first one seals, all of them open."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_config(cls, value: str) -> KeyRing:
        entries = [part for part in value.split(",") if part.strip()]
        if not entries:
            raise ValueError("SLOTBOOK_ENCRYPTION_KEYS holds no key")
        keys = []
        for entry in entries:
            raw = _decode_key(entry)
            key_id = hashlib.sha256(raw).hexdigest()[:8]
            keys.append((key_id, raw))
        return cls(tuple(keys))

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def encrypt(self, plaintext: str) -> str:
        key_id, key = self.keys[0]
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), key_id.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{_PREFIX}.{key_id}.{body}"

    def decrypt(self, token: str) -> str:
        try:
            prefix, key_id, body = token.split(".", 2)
            blob = base64.urlsafe_b64decode(body)
        except ValueError as exc:
            raise DecryptionError("malformed sealed value") from exc
        if prefix != _PREFIX:
            raise DecryptionError("unknown sealed value version")
        for candidate_id, key in self.keys:
            if candidate_id == key_id:
                try:
                    return AESGCM(key).decrypt(blob[:12], blob[12:], key_id.encode()).decode()
                except Exception as exc:  # InvalidTag and friends
                    raise DecryptionError("sealed value failed authentication") from exc
        raise DecryptionError("sealed with a key that is no longer configured")

    def needs_rotation(self, token: str) -> bool:
        """True when the value was sealed with an older key (lazy re-encryption on read)."""
        return token.split(".", 2)[1] != self.current_id


def new_token(prefix: str) -> str:
    """A 256-bit random token, readable prefix first so leaked tokens are recognisable."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


@functools.lru_cache(maxsize=4)
def _keyring_for(value: str) -> KeyRing:
    return KeyRing.from_config(value)


def keyring() -> KeyRing:
    """The running app's key ring (``SLOTBOOK_ENCRYPTION_KEYS``, newest first)."""
    from flask import current_app

    return _keyring_for(current_app.config["SLOTBOOK_ENCRYPTION_KEYS"])
