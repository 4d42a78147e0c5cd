"""Data-at-rest encryption (AES-GCM with key ids), keyed fingerprints and secret hashing.

DATA_ENCRYPTION_KEYS is "kid:base64key,kid:base64key": the first key encrypts, every key
decrypts, so keys rotate by prepending a new one and re-encrypting at leisure.
"""

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NONCE_BYTES = 12


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: bytes  # nonce || ciphertext+tag


@lru_cache(maxsize=8)
def _parse_keys(raw: str) -> tuple[tuple[str, bytes], ...]:
    keys = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, b64 = item.partition(":")
        if not sep or not kid:
            raise ImproperlyConfigured("DATA_ENCRYPTION_KEYS entries are kid:base64key")
        key = base64.b64decode(b64)
        if len(key) not in (16, 24, 32):
            raise ImproperlyConfigured(f"DATA_ENCRYPTION_KEYS key {kid!r} is not 128, 192 or 256 bits")
        keys.append((kid, key))
    if not keys:
        raise ImproperlyConfigured("DATA_ENCRYPTION_KEYS names no key")
    return tuple(keys)


def _keys() -> tuple[tuple[str, bytes], ...]:
    return _parse_keys(settings.DATA_ENCRYPTION_KEYS)


def current_key_id() -> str:
    return _keys()[0][0]


def seal(plaintext: str, *, context: str) -> Sealed:
    """Encrypt with the current key. `context` is bound as associated data, so a ciphertext
    copied into another record or purpose fails to open."""
    kid, key = _keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    ct = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
    return Sealed(key_id=kid, blob=nonce + ct)


def unseal(sealed: Sealed, *, context: str) -> str:
    key = dict(_keys()).get(sealed.key_id)
    if key is None:
        raise ImproperlyConfigured(f"No data encryption key with id {sealed.key_id!r}")
    blob = bytes(sealed.blob)
    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode()).decode()


def _derived_key(purpose: str) -> bytes:
    # One secret per purpose, so a value that leaks from one use says nothing about another.
    return hmac.new(settings.SECRET_KEY.encode(), purpose.encode(), hashlib.sha256).digest()


def pan_fingerprint(pan: str) -> str:
    return hmac.new(settings.PAN_FINGERPRINT_KEY.encode(), pan.encode(), hashlib.sha256).hexdigest()


def hash_secret(secret: str, *, purpose: str) -> str:
    """Keyed hash for high-entropy bearer secrets (API keys, device tokens)."""
    return hmac.new(_derived_key(purpose), secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, stored_hash: str, *, purpose: str) -> bool:
    return hmac.compare_digest(hash_secret(secret, purpose=purpose), stored_hash)


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
