"""A software WebAuthn authenticator: real EC P-256 keys, real CBOR, real signatures.

It answers creation options the way a platform authenticator in the issuer app would (`create`)
and produces assertions for later OOB challenges (`get_assertion`). Every knob a test needs to
make a response wrong (origin, RP id, UV flag, challenge, format) is an argument, so bad cases
are built honestly rather than by patching the verifier.
"""

import base64
import hashlib
import json
import os
import struct
import uuid

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_AT = 0x40

COSE_ALG_ES256 = -7


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class SoftwareAuthenticator:
    def __init__(self, *, aaguid: uuid.UUID | None = None, credential_id: bytes | None = None):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.aaguid = aaguid or uuid.uuid4()
        self.credential_id = credential_id or os.urandom(32)
        self.sign_count = 0
        self.user_handle: bytes | None = None

    # ------------------------------------------------------------ pieces

    def cose_public_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps({
            1: 2,  # kty: EC2
            3: COSE_ALG_ES256,
            -1: 1,  # crv: P-256
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        })

    def _auth_data(self, *, rp_id: str, flags: int, attested: bool) -> bytes:
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.sign_count)
        if attested:
            data += self.aaguid.bytes + struct.pack(">H", len(self.credential_id)) + self.credential_id
            data += self.cose_public_key()
        return data

    def _sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))

    @staticmethod
    def client_data(*, type_: str, challenge: bytes, origin: str) -> bytes:
        return json.dumps(
            {"type": type_, "challenge": b64url(challenge), "origin": origin, "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    # ------------------------------------------------------------ ceremonies

    def create(
        self,
        options: dict,
        *,
        origin: str,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        user_verified: bool = True,
        fmt: str = "none",
        client_data_json: bytes | None = None,
    ) -> dict:
        """navigator.credentials.create(): the PublicKeyCredential as JSON (base64url fields)."""
        rp_id = rp_id if rp_id is not None else options["rp"]["id"]
        challenge = challenge if challenge is not None else b64url_decode(options["challenge"])
        self.user_handle = b64url_decode(options["user"]["id"])
        flags = FLAG_UP | FLAG_AT | (FLAG_UV if user_verified else 0)
        auth_data = self._auth_data(rp_id=rp_id, flags=flags, attested=True)
        signed_client_data = self.client_data(type_="webauthn.create", challenge=challenge, origin=origin)
        if fmt == "none":
            att_stmt = {}
        elif fmt == "packed":  # self attestation: signed with the credential key itself
            att_stmt = {"alg": COSE_ALG_ES256, "sig": self._sign(auth_data + hashlib.sha256(signed_client_data).digest())}
        else:
            raise ValueError(fmt)
        attestation_object = cbor2.dumps({"fmt": fmt, "attStmt": att_stmt, "authData": auth_data})
        sent_client_data = client_data_json if client_data_json is not None else signed_client_data
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(sent_client_data),
                "attestationObject": b64url(attestation_object),
                "transports": ["internal"],
            },
        }

    def get_assertion(
        self, *, rp_id: str, challenge: bytes, origin: str, user_verified: bool = True, counter_step: int = 1
    ) -> dict:
        """navigator.credentials.get(): an assertion signed over authData || SHA-256(clientDataJSON)."""
        self.sign_count += counter_step
        flags = FLAG_UP | (FLAG_UV if user_verified else 0)
        auth_data = self._auth_data(rp_id=rp_id, flags=flags, attested=False)
        client_data_json = self.client_data(type_="webauthn.get", challenge=challenge, origin=origin)
        signature = self._sign(auth_data + hashlib.sha256(client_data_json).digest())
        response = {
            "authenticatorData": b64url(auth_data),
            "clientDataJSON": b64url(client_data_json),
            "signature": b64url(signature),
        }
        if self.user_handle is not None:
            response["userHandle"] = b64url(self.user_handle)
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": response,
        }
