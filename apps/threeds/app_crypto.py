"""The ACS side of the EMV 3DS app-channel secure session (SPEC §3.3).

- an ephemeral P-256 key pair per transaction (JWK), its private part sealed at rest;
- ECDH-ES with the SDK's sdkEphemPubKey, then the Concat KDF the EMV 3DS SDK specification fixes;
- acsSignedContent, the compact JWS the ARes carries (ES256 or PS256, `x5c` chain, leaf first);
- the CReq (JWE compact, alg "dir", kid = acsTransID) opened and the CRes sealed with the same enc.

JOSE framing, AEADs and JWS come from joserfc; only the KDF and the counter IVs are written here,
because EMV fixes them and no JOSE library exposes them in that form. Followed for the KDF inputs,
the key halves and the IVs: stripe-android's 3ds2sdk (StripeDiffieHellmanKeyGenerator,
DefaultMessageTransformer, TransactionEncrypter), which cite the EMV 3DS SDK Technical Guide
§3.3.4 and §3.4.

Nothing here logs, and no error message carries key material or plaintext.
"""

import base64
import hashlib
import json
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwe, jws
from joserfc.jwk import ECKey, OctKey, RSAKey

from apps.core.crypto import Sealed, seal, unseal

A128CBC_HS256, A128GCM = "A128CBC-HS256", "A128GCM"
ENCS = (A128CBC_HS256, A128GCM)
ES256, PS256 = "ES256", "PS256"

# A CReq is a few hundred bytes; the cap is checked before anything is parsed or decoded.
MAX_JWE_BYTES = 16 * 1024

SESSION_KEY_BYTES = 32  # Concat KDF keydatalen: 256 bits
_IV_BYTES = {A128CBC_HS256: 16, A128GCM: 12}
# The IV's padding says the direction, so the two directions never share an IV under the
# A128CBC-HS256 key they share: 0x00… SDK → ACS (CReq), 0xFF… ACS → SDK (CRes).
_PAD_SDK_TO_ACS, _PAD_ACS_TO_SDK = b"\x00", b"\xff"

_JWE_REGISTRY = jwe.JWERegistry(algorithms=["dir", *ENCS])  # no "zip": nothing to inflate


class _X5cJwsRegistry(jws.JWSRegistry):
    # acsSignedContent's protected header carries the x5c chain (RSA certificates run to about
    # 2 KB of base64 each); joserfc's default cap of 512 bytes is for headers without one.
    max_header_length = 16 * 1024


_JWS_REGISTRY = _X5cJwsRegistry(algorithms=[ES256, PS256])


class DataDecryptionFailure(Exception):
    """A CReq that does not open or authenticate under this transaction's session key: Erro 302.
    The message says which check failed, never anything about keys or content."""


class InvalidSdkEphemPubKey(ValueError):
    """sdkEphemPubKey is not a P-256 public JWK on the curve: Erro 203."""


class AcsSignedContentInvalid(Exception):
    """acsSignedContent whose signature or certificate chain does not verify."""


# ---------------------------------------------------------------- keys


def acs_ephem_key_new() -> ECKey:
    return ECKey.generate_key("P-256")


def ephem_pub_key_jwk(key: ECKey) -> dict:
    """The public JWK as EMV messages carry it (acsEphemPubKey): kty, crv, x, y only."""
    public = key.as_dict(private=False)
    return {name: public[name] for name in ("kty", "crv", "x", "y")}


def _ephem_key_context(acs_trans_id) -> str:
    return f"acs-ephem-key:{acs_trans_id}"


def acs_ephem_key_seal(key: ECKey, *, acs_trans_id) -> Sealed:
    # Bound to the transaction: a sealed key copied onto another transaction does not open.
    return seal(json.dumps(key.as_dict(private=True)), context=_ephem_key_context(acs_trans_id))


def acs_ephem_key_unseal(sealed: Sealed, *, acs_trans_id) -> ECKey:
    return ECKey.import_key(json.loads(unseal(sealed, context=_ephem_key_context(acs_trans_id))))


def sdk_ephem_pub_key_load(jwk) -> ECKey:
    """sdkEphemPubKey from the AReq, checked: EC, P-256, 32-byte coordinates, a point on the
    curve, no private part."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
        raise InvalidSdkEphemPubKey("sdkEphemPubKey is not a P-256 public key")
    try:
        coordinates = [_b64url_decode(jwk[name]) for name in ("x", "y")]
        if any(len(c) != 32 for c in coordinates):
            raise ValueError
        return ECKey.import_key({"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]})
    except (KeyError, TypeError, ValueError):
        raise InvalidSdkEphemPubKey("sdkEphemPubKey is not a P-256 point") from None


def shared_secret(acs_ephem_key: ECKey, sdk_ephem_pub_key: ECKey) -> bytes:
    """ECDH Z: the x coordinate of the shared point (32 bytes)."""
    return acs_ephem_key.private_key.exchange(ec.ECDH(), sdk_ephem_pub_key.public_key)


def concat_kdf(z: bytes, *, sdk_reference_number: str) -> bytes:
    """NIST SP 800-56A Concat KDF as the EMV 3DS SDK Technical Guide fixes it: SHA-256,
    keydatalen 256 bits (one round), AlgorithmID and PartyUInfo empty (zero length prefix only),
    PartyVInfo the sdkReferenceNumber (UTF-8, length-prefixed), SuppPubInfo the key length in
    bits, no SuppPrivInfo. Done by hand because JOSE's ECDH-ES puts "enc" in AlgorithmID."""
    reference = sdk_reference_number.encode()
    other_info = (
        struct.pack(">I", 0)  # AlgorithmID
        + struct.pack(">I", 0)  # PartyUInfo
        + struct.pack(">I", len(reference)) + reference  # PartyVInfo
        + struct.pack(">I", SESSION_KEY_BYTES * 8)  # SuppPubInfo
    )
    return hashlib.sha256(struct.pack(">I", 1) + z + other_info).digest()


def session_key_derive(*, acs_ephem_key: ECKey, sdk_ephem_pub_key: ECKey, sdk_reference_number: str) -> bytes:
    return concat_kdf(shared_secret(acs_ephem_key, sdk_ephem_pub_key), sdk_reference_number=sdk_reference_number)


def _session_key_context(acs_trans_id) -> str:
    return f"app-session-key:{acs_trans_id}"


def session_key_seal(session_key: bytes, *, acs_trans_id) -> Sealed:
    return seal(_b64url_encode(session_key), context=_session_key_context(acs_trans_id))


def session_key_unseal(sealed: Sealed, *, acs_trans_id) -> bytes:
    return _b64url_decode(unseal(sealed, context=_session_key_context(acs_trans_id)))


# ---------------------------------------------------------------- acsSignedContent


def acs_signed_content(*, acs_trans_id, acs_ref_number: str, acs_url: str, acs_ephem_pub_key: dict,
                       sdk_ephem_pub_key: dict, signing_key, chain: list[x509.Certificate]) -> str:
    """The ARes's acsSignedContent: a compact JWS signed with the network's ACS signing key
    (EC P-256 → ES256, RSA → PS256), `x5c` = the certificate chain, leaf first (standard base64
    DER, RFC 7515 §4.1.6). sdkEphemPubKey goes back as received so the SDK can compare it."""
    if isinstance(signing_key, ec.EllipticCurvePrivateKey) and isinstance(signing_key.curve, ec.SECP256R1):
        alg, key_cls = ES256, ECKey
    elif isinstance(signing_key, rsa.RSAPrivateKey):
        alg, key_cls = PS256, RSAKey
    else:
        raise ValueError("the ACS signing key must be EC P-256 or RSA")
    if not chain or chain[0].public_key().public_numbers() != signing_key.public_key().public_numbers():
        raise ValueError("the chain's first certificate is not the signing key's")
    pem = signing_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    header = {"alg": alg, "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]}
    payload = {
        "acsTransID": str(acs_trans_id),
        "acsRefNumber": acs_ref_number,
        "acsURL": acs_url,
        "acsEphemPubKey": acs_ephem_pub_key,
        "sdkEphemPubKey": sdk_ephem_pub_key,
    }
    return jws.serialize_compact(header, json.dumps(payload, separators=(",", ":")), key_cls.import_key(pem),
                                 registry=_JWS_REGISTRY)


def acs_signed_content_verify(value: str, *, trust_anchors: list[x509.Certificate], now: datetime | None = None) -> dict:
    """What an SDK does with acsSignedContent: the `x5c` chain must lead to one of
    `trust_anchors` (each certificate signed by the next, all within validity), the JWS must
    verify under the leaf's key with the algorithm that key allows. Returns the payload.
    Here for the operator's install check and the simulator; the test SDK has its own."""
    now = now or datetime.now(timezone.utc)
    try:
        obj = jws.extract_compact(value.encode() if isinstance(value, str) else value, registry=_JWS_REGISTRY)
        header = obj.headers()
        chain = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in header["x5c"]]
        _chain_check(chain, trust_anchors, now)
        leaf_key = chain[0].public_key()
        if header["alg"] == ES256 and isinstance(leaf_key, ec.EllipticCurvePublicKey):
            key = ECKey.import_key(leaf_key.public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        elif header["alg"] == PS256 and isinstance(leaf_key, rsa.RSAPublicKey):
            key = RSAKey.import_key(leaf_key.public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
        else:
            raise AcsSignedContentInvalid("alg does not match the leaf certificate's key")
        if not jws.validate_compact(obj, key, registry=_JWS_REGISTRY):
            raise AcsSignedContentInvalid("bad signature")
        payload = json.loads(obj.payload)
        if not isinstance(payload, dict):
            raise AcsSignedContentInvalid("payload is not an object")
        return payload
    except AcsSignedContentInvalid:
        raise
    except Exception:
        raise AcsSignedContentInvalid("acsSignedContent does not verify") from None


def _chain_check(chain, trust_anchors, now) -> None:
    if not chain:
        raise AcsSignedContentInvalid("empty x5c")
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise AcsSignedContentInvalid("a certificate is outside its validity")
    for cert, issuer in zip(chain, chain[1:]):
        _check_is_ca(issuer)
        cert.verify_directly_issued_by(issuer)
    top = chain[-1]
    for anchor in trust_anchors:
        if top == anchor:
            return
        try:
            _check_is_ca(anchor)
            top.verify_directly_issued_by(anchor)
            return
        except Exception:
            continue
    raise AcsSignedContentInvalid("the chain does not lead to a trust anchor")


def _check_is_ca(cert: x509.Certificate) -> None:
    # A leaf must not be able to sign another leaf into the chain.
    if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
        raise AcsSignedContentInvalid("an issuer in the chain is not a CA")


# ---------------------------------------------------------------- CReq / CRes


@dataclass(frozen=True)
class OpenedCReq:
    creq: dict
    enc: str  # the CRes answers with the same enc


def _direction_key(session_key: bytes, enc: str, *, sdk_to_acs: bool) -> bytes:
    # A128CBC-HS256 takes the whole 256-bit key (MAC half, then AES half) both ways; A128GCM
    # takes the first 16 bytes SDK → ACS and the last 16 ACS → SDK.
    if enc == A128CBC_HS256:
        return session_key
    return session_key[:16] if sdk_to_acs else session_key[16:]


def counter_iv(enc: str, counter: int, *, sdk_to_acs: bool) -> bytes:
    """The IV EMV builds from a message counter: the direction's pad byte repeated, the counter
    (sdkCounterStoA / acsCounterAtoS, 0–255) as the last byte; 16 bytes for CBC, 12 for GCM."""
    if not 0 <= counter <= 255:
        raise ValueError("counter out of range")
    pad = _PAD_SDK_TO_ACS if sdk_to_acs else _PAD_ACS_TO_SDK
    return pad * (_IV_BYTES[enc] - 1) + bytes([counter])


def _check_session_key(session_key: bytes) -> None:
    # A caller's mistake, not a bad message: raised as itself, never as Erro 302.
    if not isinstance(session_key, bytes) or len(session_key) != SESSION_KEY_BYTES:
        raise ValueError("the session key is 32 bytes")


def jwe_kid(body) -> str:
    """The kid (acsTransID) of a JWE body, read before anything is decrypted so the caller can
    find the transaction's session key. Not authenticated yet: creq_decrypt checks it again."""
    try:
        raw = _bounded(body)
        header = json.loads(_b64url_decode(raw.split(b".", 1)[0]))
        kid = header["kid"]
        if not isinstance(kid, str):
            raise TypeError
        return kid
    except DataDecryptionFailure:
        raise
    except Exception:
        raise DataDecryptionFailure("no readable kid") from None


def creq_decrypt(body, *, session_key: bytes, acs_trans_id) -> OpenedCReq:
    """Open a CReq (JWE compact) sent with this transaction's session key. Anything that does not
    open, authenticate or parse to a JSON object raises DataDecryptionFailure, and only that."""
    _check_session_key(session_key)
    raw = _bounded(body)
    try:
        parts = raw.split(b".")
        if len(parts) != 5:
            raise DataDecryptionFailure("not a JWE compact serialisation")
        header = json.loads(_b64url_decode(parts[0]))
        if not isinstance(header, dict) or header.get("alg") != "dir" or header.get("enc") not in ENCS:
            raise DataDecryptionFailure("alg or enc not allowed")
        # Other parameters are left to joserfc's registry: registered ones only, no "zip", "crit"
        # only for what it understands; SDKs differ in what else they put in the header.
        if not isinstance(header.get("kid"), str) or uuid.UUID(header["kid"]) != uuid.UUID(str(acs_trans_id)):
            raise DataDecryptionFailure("kid is not this transaction")
        if parts[1]:
            raise DataDecryptionFailure("dir takes no encrypted key")
        enc = header["enc"]
        key = OctKey.import_key(_direction_key(session_key, enc, sdk_to_acs=True))
        opened = jwe.decrypt_compact(raw, key, registry=_JWE_REGISTRY)
        creq = json.loads(opened.plaintext)
        if not isinstance(creq, dict):
            raise DataDecryptionFailure("not a JSON object")
        return OpenedCReq(creq=creq, enc=enc)
    except DataDecryptionFailure:
        raise
    except Exception:
        # Untrusted bytes: whatever fails while opening them (bad base64, JSON, tag, IV size,
        # joserfc's own checks) is the same answer, Erro 302, and says nothing more.
        raise DataDecryptionFailure("does not decrypt") from None


def cres_encrypt(cres: dict, *, session_key: bytes, acs_trans_id, enc: str) -> str:
    """Seal a CRes with the CReq's enc. The IV is built from the CRes's own acsCounterAtoS, so
    the counter in the message and the IV cannot disagree."""
    return _seal(cres, counter_name="acsCounterAtoS", sdk_to_acs=False, session_key=session_key,
                 acs_trans_id=acs_trans_id, enc=enc)


def _seal(message: dict, *, counter_name: str, sdk_to_acs: bool, session_key: bytes, acs_trans_id, enc: str) -> str:
    _check_session_key(session_key)
    if enc not in ENCS:
        raise ValueError("enc not supported")
    counter = int(message[counter_name])
    iv = counter_iv(enc, counter, sdk_to_acs=sdk_to_acs)
    header = {"alg": "dir", "enc": enc, "kid": str(acs_trans_id)}
    protected = _b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    # joserfc draws a random IV in encrypt_compact; its enc model is used directly to pass
    # the counter IV, and the compact form (empty encrypted key for "dir") is assembled here.
    plaintext = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    ciphertext, tag = _JWE_REGISTRY.get_enc(enc).encrypt(
        plaintext, _direction_key(session_key, enc, sdk_to_acs=sdk_to_acs), iv, protected.encode()
    )
    return ".".join([protected, "", _b64url_encode(iv), _b64url_encode(ciphertext), _b64url_encode(tag)])


# ---------------------------------------------------------------- the SDK's side (the simulator)
#
# What a 3DS SDK does with the same keys, for apps.threeds.simulator (simulate_3ds, the bench).
# The tests check the ACS against tests/support/emv_sdk.py instead, which shares no code with this.


def sdk_session_key_derive(*, sdk_ephem_key: ECKey, acs_ephem_pub_key: dict, sdk_reference_number: str) -> bytes:
    """The SDK's session key: ECDH with the ARes's acsEphemPubKey, then the same Concat KDF."""
    acs_public = sdk_ephem_pub_key_load(acs_ephem_pub_key)  # the same checks: a P-256 public point
    return concat_kdf(shared_secret(sdk_ephem_key, acs_public), sdk_reference_number=sdk_reference_number)


def creq_encrypt(creq: dict, *, session_key: bytes, acs_trans_id, enc: str) -> str:
    """Seal a CReq as an SDK does: kid = acsTransID, the IV from its sdkCounterStoA."""
    return _seal(creq, counter_name="sdkCounterStoA", sdk_to_acs=True, session_key=session_key,
                 acs_trans_id=acs_trans_id, enc=enc)


def cres_decrypt(body, *, session_key: bytes, acs_trans_id) -> dict:
    """Open a CRes as an SDK does; DataDecryptionFailure when it does not open or is not this
    transaction's."""
    _check_session_key(session_key)
    raw = _bounded(body)
    try:
        header = json.loads(_b64url_decode(raw.split(b".", 1)[0]))
        if header.get("alg") != "dir" or header.get("enc") not in ENCS or header.get("kid") != str(acs_trans_id):
            raise DataDecryptionFailure("not this transaction's CRes")
        key = OctKey.import_key(_direction_key(session_key, header["enc"], sdk_to_acs=False))
        cres = json.loads(jwe.decrypt_compact(raw, key, registry=_JWE_REGISTRY).plaintext)
        if not isinstance(cres, dict):
            raise DataDecryptionFailure("not a JSON object")
        return cres
    except DataDecryptionFailure:
        raise
    except Exception:
        raise DataDecryptionFailure("does not decrypt") from None


def acs_signed_content_chain_top(value: str) -> x509.Certificate:
    """The last certificate of acsSignedContent's x5c (unverified): the simulator's trust anchor
    when it is given none, so that it still checks the chain and the signature hold together."""
    header = json.loads(_b64url_decode(value.split(".", 1)[0]))
    return x509.load_der_x509_certificate(base64.b64decode(header["x5c"][-1], validate=True))


# ---------------------------------------------------------------- helpers


def _bounded(body) -> bytes:
    if isinstance(body, str):
        if len(body) > MAX_JWE_BYTES:
            raise DataDecryptionFailure("too large")
        try:
            body = body.encode("ascii")
        except UnicodeEncodeError:
            raise DataDecryptionFailure("not a JWE compact serialisation") from None
    if not isinstance(body, bytes):
        raise DataDecryptionFailure("not a JWE compact serialisation")
    if len(body) > MAX_JWE_BYTES:
        raise DataDecryptionFailure("too large")
    return body.strip()


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(data) -> bytes:
    if isinstance(data, str):
        data = data.encode("ascii")
    if b"=" in data:
        raise ValueError("padded base64url")
    return base64.b64decode(data + b"=" * (-len(data) % 4), altchars=b"-_", validate=True)
