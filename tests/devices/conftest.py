import pytest

from tests.conftest import JsonClient
from tests.devices.authenticator import SoftwareAuthenticator

RP_ID = "bank.example"
WEB_ORIGIN = "https://bank.example"
ANDROID_ORIGIN = "android:apk-key-hash:" + "A" * 43


@pytest.fixture(autouse=True)
def webauthn_issuer(issuer):
    issuer.webauthn_rp_id = RP_ID
    issuer.webauthn_origins = [WEB_ORIGIN, ANDROID_ORIGIN]
    issuer.save(update_fields=["webauthn_rp_id", "webauthn_origins"])
    return issuer


@pytest.fixture
def sdk():
    return JsonClient()


@pytest.fixture
def authenticator():
    return SoftwareAuthenticator()


def enroll(api, cardholder) -> str:
    r = api.post(f"/api/v1/cardholders/{cardholder.pk}/device-enrollments")
    assert r.status_code == 201, r.content
    return r.json()["enrollment_token"]


def options(sdk, token) -> dict:
    r = sdk.post("/sdk/v1/registrations/options", {"enrollment_token": token})
    assert r.status_code == 200, r.content
    return r.json()


def registration_body(token, credential, **overrides) -> dict:
    body = {
        "enrollment_token": token,
        "credential": credential,
        "push": {"platform": "fcm", "token": "fcm-push-token-" + "x" * 40},
        "device_name": "Pixel 9",
    }
    return {**body, **overrides}


def register(sdk, token, credential, **overrides):
    return sdk.post("/sdk/v1/registrations", registration_body(token, credential, **overrides))


def device_client(device_token: str) -> JsonClient:
    client = JsonClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {device_token}")
    return client
