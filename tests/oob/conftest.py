"""An issuer with WebAuthn configured, a cardholder with a verified primary phone, a card, and a
device registered through the SDK API with the software authenticator. Pushes go to the `file`
backend, SMS to the `file` backend, tasks run in this process."""

import json
from dataclasses import dataclass

import pytest

from apps.threeds.models import RiskPolicy
from tests.conftest import JsonClient
from tests.support.app_session import AppSession
from tests.devices.authenticator import SoftwareAuthenticator, b64url_decode
from tests.devices.conftest import ANDROID_ORIGIN, RP_ID, WEB_ORIGIN, enroll, options, register
from tests.factories import make_card, make_phone, new_pan
from tests.support.fixtures import in_process_tasks, sms_file  # noqa: F401 (fixtures)
from tests.threeds.builders import areq as build_areq

__all__ = ["ANDROID_ORIGIN", "RP_ID", "WEB_ORIGIN"]


@pytest.fixture
def push_file(settings, tmp_path, in_process_tasks):  # noqa: F811
    settings.PUSH_BACKEND = "file"
    settings.PUSH_FILE_PATH = str(tmp_path / "push.jsonl")

    class Pushes:
        path = tmp_path / "push.jsonl"

        def messages(self):
            if not self.path.exists():
                return []
            return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    return Pushes()


class CommitClient(JsonClient):
    """Each request behaves as after a real commit: its on_commit work (push, SMS, RReq,
    notifications) runs, in this process (tasks are eager here)."""

    capture = None

    def request(self, **kwargs):
        with self.capture(execute=True):
            return super().request(**kwargs)


@pytest.fixture
def commit_client(django_capture_on_commit_callbacks):
    def make() -> CommitClient:
        client = CommitClient()
        client.capture = django_capture_on_commit_callbacks
        return client

    return make


@pytest.fixture
def directory_server():
    from tests.threeds.merchant_site import DirectoryServerStub

    stub = DirectoryServerStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def ds(commit_client, directory_server):
    """The DS and the 3DS SDK / merchant side: AReqs and CReqs."""
    client = commit_client()
    client.ds_url = directory_server.rreq_url
    return client


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a service call as if committed (e.g. the timeout sweep)."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


@dataclass
class App:
    """The issuer app on one phone: its authenticator and its device token."""

    authenticator: SoftwareAuthenticator
    device_id: str
    client: JsonClient
    origin: str = ANDROID_ORIGIN

    def pending(self) -> list[dict]:
        r = self.client.get("/sdk/v1/authn-requests")
        assert r.status_code == 200, r.content
        return r.json()["authnRequests"]

    def proceed(self, acs_trans_id):
        return self.client.post(f"/sdk/v1/authn-requests/{acs_trans_id}/proceed")

    def cancel(self, acs_trans_id):
        return self.client.post(f"/sdk/v1/authn-requests/{acs_trans_id}/cancel")

    def assertion_for(self, options: dict, **knobs) -> dict:
        knobs.setdefault("rp_id", RP_ID)
        knobs.setdefault("origin", self.origin)
        knobs.setdefault("challenge", b64url_decode(options["challenge"]))
        return self.authenticator.get_assertion(**knobs)

    def assert_(self, acs_trans_id, credential: dict):
        return self.client.post(f"/sdk/v1/authn-requests/{acs_trans_id}/assertion", {"credential": credential})

    def approve(self, acs_trans_id, **knobs):
        r = self.proceed(acs_trans_id)
        assert r.status_code == 200, r.content
        return self.assert_(acs_trans_id, self.assertion_for(r.json(), **knobs))


def register_app(api, cardholder, client: JsonClient, *, origin: str = ANDROID_ORIGIN) -> App:
    sdk = JsonClient()
    token = enroll(api, cardholder)
    authenticator = SoftwareAuthenticator()
    credential = authenticator.create(options(sdk, token), origin=origin)
    r = register(sdk, token, credential)
    assert r.status_code == 201, r.content
    body = r.json()
    client.credentials(HTTP_AUTHORIZATION=f"Device {body['device_token']}")
    return App(authenticator, body["device_id"], client, origin)


@pytest.fixture
def oob_card(issuer, cardholder):
    """WebAuthn configured for the issuer, a verified primary phone, an active card, a risk policy
    that challenges on indicator 04."""
    issuer.webauthn_rp_id = RP_ID
    issuer.webauthn_origins = [WEB_ORIGIN, ANDROID_ORIGIN]
    issuer.save(update_fields=["webauthn_rp_id", "webauthn_origins"])
    make_phone(cardholder)
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
    pan = new_pan()
    make_card(cardholder=cardholder, pan=pan)
    return pan


@pytest.fixture
def app(api, cardholder, oob_card, commit_client):
    return register_app(api, cardholder, commit_client())


@dataclass
class Tx:
    message: dict
    ares: dict
    session: AppSession | None = None  # the app channel's test SDK

    @property
    def acs_trans_id(self) -> str:
        return self.ares["acsTransID"]


def send_areq(client, pan: str, *, channel: str = "01", enc: str = "A128CBC-HS256", **overrides) -> Tx:
    overrides.setdefault("dsURL", getattr(client, "ds_url", "https://ds.example/rreq"))
    if channel == "01":
        session = AppSession(client, enc=enc)
        session.areq(pan=pan, threeDSRequestorChallengeInd="04", **overrides)
        return Tx(session.message, session.ares, session)
    message = build_areq(pan=pan, channel=channel, threeDSRequestorChallengeInd="04", **overrides)
    r = client.post("/3ds/v2/areq", message, format="json")
    assert r.status_code == 200, r.content
    return Tx(message, r.json())


def creq(client, tx: Tx, **fields) -> dict:
    """The 3DS SDK's next CReq (app channel, JWE), its CRes decrypted."""
    return tx.session.send(**fields)
