"""A test-side EMV 3DS SDK: the merchant app's half of the app-channel secure session.

Written apart from apps.threeds.app_crypto, so that the ACS is checked against something it
does not share code with: the KDF goes through `cryptography`'s ConcatKDFHash, CReqs are
sealed with `cryptography`'s AES primitives (A128CBC-HS256 composed as RFC 7518 §5.2.2 says),
acsSignedContent and CRes are opened with joserfc, and the certificate chain is walked here.
Counters and IVs follow the EMV 3DS SDK Technical Guide as stripe-android's 3ds2sdk implements it.
"""

import base64
import hashlib
import hmac
import json
import struct
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from joserfc import jwe, jws
from joserfc.jwk import ECKey, OctKey, RSAKey


class SdkError(Exception):
    pass


class _X5cRegistry(jws.JWSRegistry):
    max_header_length = 16 * 1024  # room for the x5c chain


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ec_public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict:
    numbers = public_key.public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big"))}


def ec_public_from_jwk(jwk: dict) -> ec.EllipticCurvePublicKey:
    x, y = (int.from_bytes(unb64url(jwk[n]), "big") for n in ("x", "y"))
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def emv_concat_kdf(z: bytes, sdk_reference_number: str) -> bytes:
    reference = sdk_reference_number.encode()
    other_info = b"\0\0\0\0" + b"\0\0\0\0" + struct.pack(">I", len(reference)) + reference + struct.pack(">I", 256)
    return ConcatKDFHash(algorithm=hashes.SHA256(), length=32, otherinfo=other_info).derive(z)


def verify_chain(chain: list[x509.Certificate], trust_anchor: x509.Certificate, now: datetime) -> None:
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SdkError("certificate outside validity")
    for cert, issuer in zip(chain, [*chain[1:], trust_anchor]):
        if cert == issuer:
            continue
        try:
            cert.verify_directly_issued_by(issuer)
        except Exception as exc:
            raise SdkError("chain does not verify") from exc


class EmvSdk:
    """One transaction's SDK state: the ephemeral key pair, the session key once the ARes's
    acsSignedContent is verified, the enc it chose, and both counters."""

    def __init__(self, *, sdk_reference_number="3DS_LOA_SDK_TEST_0001", enc="A128CBC-HS256", private_key=None):
        self.sdk_reference_number = sdk_reference_number
        self.enc = enc
        self.private_key = private_key or ec.generate_private_key(ec.SECP256R1())
        self.sdk_ephem_pub_key = ec_public_jwk(self.private_key.public_key())
        self.session_key: bytes | None = None
        self.acs_trans_id: str | None = None
        self.sdk_counter_s_to_a = 0
        self.acs_counter_a_to_s = 0

    # -------------------------------------------------------- ARes

    def verify_acs_signed_content(self, value: str, *, trust_anchor: x509.Certificate, now=None) -> dict:
        """Verify the chain and the JWS, check sdkEphemPubKey is ours, derive the session key."""
        obj = jws.extract_compact(value.encode(), registry=_X5cRegistry(algorithms=["ES256", "PS256"]))
        header = obj.headers()
        if header.get("alg") not in ("ES256", "PS256"):
            raise SdkError("alg")
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
        verify_chain(chain, trust_anchor, now or datetime.now(timezone.utc))
        leaf_pem = chain[0].public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
        key_type = "EC" if header["alg"] == "ES256" else "RSA"
        try:
            jws.deserialize_compact(value, jws_key(leaf_pem, key_type), registry=_X5cRegistry(algorithms=[header["alg"]]))
        except Exception as exc:
            raise SdkError("signature") from exc
        payload = json.loads(obj.payload)
        if payload["sdkEphemPubKey"] != self.sdk_ephem_pub_key:
            raise SdkError("sdkEphemPubKey is not ours")
        acs_public = ec_public_from_jwk(payload["acsEphemPubKey"])
        z = self.private_key.exchange(ec.ECDH(), acs_public)
        self.session_key = emv_concat_kdf(z, self.sdk_reference_number)
        self.acs_trans_id = payload["acsTransID"]
        return payload

    # -------------------------------------------------------- CReq

    def _key(self, *, sdk_to_acs: bool) -> bytes:
        if self.enc == "A128CBC-HS256":
            return self.session_key
        return self.session_key[:16] if sdk_to_acs else self.session_key[16:]

    def encrypt_creq(self, creq: dict, *, counter=None, iv=None) -> str:
        """Seal the CReq with sdkCounterStoA set and the counter IV; advances the counter.
        `counter`/`iv` override for tests of a misbehaving SDK."""
        counter = self.sdk_counter_s_to_a if counter is None else counter
        creq = {**creq, "sdkCounterStoA": f"{counter:03d}"}
        sealed = self.seal_document(creq, counter=counter, iv=iv)
        self.sdk_counter_s_to_a = counter + 1
        return sealed

    def seal_document(self, document, *, counter: int, iv=None) -> str:
        """Any JSON document sealed as a CReq would be, with the counter IV of `counter` (the
        document's own elements as given): for tests of what the ACS does with what it opens."""
        header = {"alg": "dir", "enc": self.enc, "kid": self.acs_trans_id}
        protected = b64url(json.dumps(header).encode())
        aad = protected.encode()
        plaintext = json.dumps(document).encode()
        key = self._key(sdk_to_acs=True)
        if self.enc == "A128GCM":
            iv = iv if iv is not None else b"\0" * 11 + bytes([counter])
            sealed = AESGCM(key).encrypt(iv, plaintext, aad)
            ciphertext, tag = sealed[:-16], sealed[-16:]
        else:
            iv = iv if iv is not None else b"\0" * 15 + bytes([counter])
            ciphertext, tag = cbc_hs256_encrypt(key, iv, plaintext, aad)
        return ".".join([protected, "", b64url(iv), b64url(ciphertext), b64url(tag)])

    # -------------------------------------------------------- CRes

    def decrypt_cres(self, body: str, *, check_counter: bool = True) -> dict:
        """Open a CRes with joserfc (as stripe's SDK uses nimbus's DirectDecrypter); the
        acsCounterAtoS must be the one expected, the IV the counter IV (unless `check_counter`
        is False: a fuzz test's CRes of a step it rolls back)."""
        obj = jwe.decrypt_compact(body, OctKey.import_key(self._key(sdk_to_acs=False)),
                                  algorithms=["dir", self.enc])
        if obj.protected.get("kid") != self.acs_trans_id:
            raise SdkError("kid")
        cres = json.loads(obj.plaintext)
        if not check_counter:
            return cres
        if int(cres["acsCounterAtoS"]) != self.acs_counter_a_to_s:
            raise SdkError("acsCounterAtoS")
        size = 12 if self.enc == "A128GCM" else 16
        if obj.bytes_segments["iv"] != b"\xff" * (size - 1) + bytes([self.acs_counter_a_to_s]):
            raise SdkError("IV is not the counter IV")
        self.acs_counter_a_to_s += 1
        return cres


def jws_key(pem: bytes, key_type: str):
    return ECKey.import_key(pem) if key_type == "EC" else RSAKey.import_key(pem)


def cbc_hs256_encrypt(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """RFC 7518 §5.2.2.1: MAC key the first half, AES-128 key the second; tag = first 16 bytes of
    HMAC-SHA-256(AAD ‖ IV ‖ ciphertext ‖ AL), AL the AAD's length in bits, 64-bit big-endian."""
    mac_key, enc_key = key[:16], key[16:]
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    al = struct.pack(">Q", len(aad) * 8)
    tag = hmac.new(mac_key, aad + iv + ciphertext + al, hashlib.sha256).digest()[:16]
    return ciphertext, tag
