"""The result of an authentication: ECI per network, and the authentication value (a keyed MAC).

authenticationValue: 20 bytes, standard base64 (28 characters):
    byte 0      format version (0x01)
    bytes 1-19  HMAC-SHA256(issuer key, canonical fields)[:19]
The issuer key is derived (HKDF) from a master key of AUTHENTICATION_VALUE_KEYS and the
issuer_id, so each issuer has its own key and keys rotate by key id, which the transaction keeps.
"""

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.threeds.emv import ECI, ECI_DEFAULT_NETWORK, ECI_FROM_CO_BADGE

AV_FORMAT_VERSION = b"\x01"
# cb_avalgo of this MAC (Cartes Bancaires "CB-AVALGO"): "0" = HMAC (SPEC §3.7; Stripe's enum 0 1 2 3 4 A).
CB_AVALGO = "0"


def eci_for(*, network: str, co_badge: str, trans_status: str) -> str:
    """The ECI of a result (tables in apps.threeds.emv). Cartes Bancaires co-badged cards use the
    co-badge's table; a status without an entry (none is final) reads as N."""
    table = ECI.get(co_badge if network == ECI_FROM_CO_BADGE else network) or ECI[ECI_DEFAULT_NETWORK]
    return table.get(trans_status, table["N"])


@lru_cache(maxsize=8)
def _master_keys(raw: str) -> tuple[tuple[str, bytes], ...]:
    keys = []
    for item in raw.split(","):
        kid, sep, b64 = item.strip().partition(":")
        if not sep:
            raise ImproperlyConfigured("AUTHENTICATION_VALUE_KEYS entries are kid:base64key")
        keys.append((kid, base64.b64decode(b64)))
    if not keys:
        raise ImproperlyConfigured("AUTHENTICATION_VALUE_KEYS names no key")
    return tuple(keys)


def current_key_id() -> str:
    return _master_keys(settings.AUTHENTICATION_VALUE_KEYS)[0][0]


@lru_cache(maxsize=256)
def _issuer_key(raw: str, key_id: str, issuer_id: str) -> bytes:
    master = dict(_master_keys(raw)).get(key_id)
    if master is None:
        raise ImproperlyConfigured(f"No authentication value key {key_id!r}")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"av:{issuer_id}".encode()).derive(master)


def _canonical(*, pan: str, ds_trans_id: str, acs_trans_id: str, purchase_amount, purchase_currency: str, trans_status: str) -> bytes:
    fields = [pan, str(ds_trans_id).lower(), str(acs_trans_id).lower(), str(purchase_amount or ""), purchase_currency or "", trans_status]
    return "|".join(fields).encode()


def authentication_value(*, issuer_id: str, key_id: str | None = None, **fields) -> tuple[str, str]:
    """(value, key_id). Only for Y and A results."""
    key_id = key_id or current_key_id()
    key = _issuer_key(settings.AUTHENTICATION_VALUE_KEYS, key_id, issuer_id)
    mac = hmac.new(key, _canonical(**fields), hashlib.sha256).digest()[:19]
    return base64.b64encode(AV_FORMAT_VERSION + mac).decode(), key_id


def authentication_value_matches(value: str, *, issuer_id: str, key_id: str, **fields) -> bool:
    expected, _ = authentication_value(issuer_id=issuer_id, key_id=key_id, **fields)
    return hmac.compare_digest(expected.encode(), (value or "").encode())
