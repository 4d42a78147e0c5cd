"""The merchant app's side of an app-channel authentication, for tests: the AReq the 3DS Server
sends on behalf of the test SDK (tests.support.emv_sdk, its own ephemeral key and
sdkReferenceNumber), the ARes's acsSignedContent verified against the installed test chain
(tests.support.signing), then CReq/CRes exchanged as JWE (SPEC §3.3), through Django's test
client. The one helper every app-channel test uses."""

import contextlib
import json

from apps.threeds.models import Transaction
from apps.threeds.simulator.messages import areq as areq_message
from tests.support.emv_sdk import EmvSdk
from tests.support.signing import trust_anchor

AREQ_URL, CREQ_URL = "/3ds/v2/areq", "/3ds/v2/creq"
JOSE = "application/jose; charset=UTF-8"


class AppSession:
    """One app-channel transaction. `around()` wraps each request (e.g. a fixture that runs its
    on-commit work); `enc` is the JWE enc the SDK chose; `network` names the test root the SDK
    trusts (by default the card's network's)."""

    def __init__(self, client, *, enc="A128CBC-HS256", around=None, network=None):
        self.client, self.network = client, network
        self.around = around or contextlib.nullcontext
        self.sdk = EmvSdk(enc=enc)
        self.message: dict | None = None
        self.ares: dict | None = None
        self.payload: dict | None = None

    # -------------------------------------------------------- AReq

    def areq(self, *, pan, **overrides) -> dict:
        """Send the AReq; on a challenge, verify acsSignedContent and derive the session key."""
        self.message = areq_message(pan=pan, channel="01", sdkEphemPubKey=self.sdk.sdk_ephem_pub_key,
                                    sdkReferenceNumber=self.sdk.sdk_reference_number, **overrides)
        with self.around():
            response = self.client.post(AREQ_URL, json.dumps(self.message), content_type="application/json")
        assert response.status_code == 200, response.content[:300]
        self.ares = response.json()
        if self.ares.get("transStatus") == "C":
            # The SDK trusts the test root of the card's network (tests.support.signing).
            network = self.network or Transaction.objects.get(pk=self.ares["acsTransID"]).network
            self.payload = self.sdk.verify_acs_signed_content(self.ares["acsSignedContent"],
                                                              trust_anchor=trust_anchor(network))
            assert self.payload["acsTransID"] == self.ares["acsTransID"] and self.payload["acsURL"] == self.ares["acsURL"]
        return self.ares

    @property
    def acs_trans_id(self) -> str:
        return self.ares["acsTransID"]

    # -------------------------------------------------------- CReq / CRes

    def creq(self, **fields) -> dict:
        """The next CReq's plaintext (sdkCounterStoA is set when it is encrypted)."""
        creq = {"messageType": "CReq", "messageVersion": self.message["messageVersion"],
                "threeDSServerTransID": self.message["threeDSServerTransID"], "acsTransID": self.acs_trans_id,
                "sdkTransID": self.message["sdkTransID"], **fields}
        return {k: v for k, v in creq.items() if v is not None}

    def encrypt(self, **fields) -> str:
        """The next CReq as the SDK seals it (advances sdkCounterStoA); `counter=` overrides."""
        counter = fields.pop("counter", None)
        return self.sdk.encrypt_creq(self.creq(**fields), counter=counter)

    def post(self, body, content_type=JOSE):
        with self.around():
            return self.client.post(CREQ_URL, body, content_type=content_type)

    def send(self, **fields) -> dict:
        """A CReq whose answer must be a CRes: decrypted and checked (counter, IV, kid)."""
        response = self.post(self.encrypt(**fields))
        assert response.status_code == 200, response.content[:300]
        assert response["Content-Type"] == JOSE, (response["Content-Type"], response.content[:300])
        return self.sdk.decrypt_cres(response.content.decode())

    def send_raw(self, body, content_type=JOSE) -> dict:
        """A body whose answer must be a plain JSON Erro."""
        response = self.post(body, content_type=content_type)
        assert response.status_code == 200 and response["Content-Type"].startswith("application/json"), response.content[:300]
        erro = json.loads(response.content)
        assert erro["messageType"] == "Erro", erro
        return erro

    # The simulator's AppChallenge names, for tests written against it.
    def start(self) -> dict:
        return self.send()

    def submit(self, code: str) -> dict:
        return self.send(challengeDataEntry=code)
