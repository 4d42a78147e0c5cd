"""Shared pieces of the out-of-band end-to-end tests (tests/oob/test_oob_e2e.py with a real Celery
worker, tests/oob/test_oob_browser.py with a real Chromium): an issuer ready for OOB, and the
issuer app on the cardholder's phone talking to the live server over REAL HTTP.

The app is what a real one does with the D1-style SDK: it is enrolled by the issuer backend (a
device-enrollment token from the issuer API), registers a WebAuthn credential made by the software
authenticator (tests/devices/authenticator.py) through the SDK API, then fetches its pending
requests, proceeds or cancels, and signs the request options it is handed.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

import requests

from tests.devices.authenticator import SoftwareAuthenticator, b64url_decode
from tests.devices.conftest import ANDROID_ORIGIN, RP_ID, WEB_ORIGIN
from tests.threeds.harness import HTTP_TIMEOUT, Bank, make_bank

__all__ = ["ANDROID_ORIGIN", "RP_ID", "WEB_ORIGIN", "HttpApp", "make_oob_bank", "register_app_over_http"]


def make_oob_bank(*, notification_base_url: str = "", **risk) -> Bank:
    """tests.threeds.harness.make_bank (default OTP policy, webhook secret, API key, a cardholder
    with a verified primary JP mobile, an active card, challenge on indicator 04), plus the
    issuer's WebAuthn settings (RP id, web and Android origins), which OOB needs."""
    bank = make_bank(notification_base_url=notification_base_url, **risk)
    bank.issuer.webauthn_rp_id = RP_ID
    bank.issuer.webauthn_origins = [WEB_ORIGIN, ANDROID_ORIGIN]
    bank.issuer.save(update_fields=["webauthn_rp_id", "webauthn_origins"])
    return bank


@dataclass
class HttpApp:
    """The issuer app on one phone, over real HTTP against the live server."""

    base_url: str
    authenticator: SoftwareAuthenticator
    device_id: str
    device_token: str
    push_token: str
    origin: str = ANDROID_ORIGIN
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self):
        self.http.headers["Authorization"] = f"Device {self.device_token}"

    def _url(self, acs_trans_id, action: str) -> str:
        return f"{self.base_url}/sdk/v1/authn-requests/{acs_trans_id}/{action}"

    def pending(self) -> list[dict]:
        r = self.http.get(f"{self.base_url}/sdk/v1/authn-requests", timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text[:500]
        assert r.headers["Content-Type"].startswith("application/json")
        return r.json()["authnRequests"]

    def proceed(self, acs_trans_id) -> requests.Response:
        return self.http.post(self._url(acs_trans_id, "proceed"), timeout=HTTP_TIMEOUT)

    def cancel(self, acs_trans_id) -> requests.Response:
        return self.http.post(self._url(acs_trans_id, "cancel"), timeout=HTTP_TIMEOUT)

    def assertion_for(self, options: dict) -> dict:
        """navigator.credentials.get() on the phone: user verified (biometric), the RP id and
        challenge of the options, the app's origin; the authenticator's counter advances."""
        return self.authenticator.get_assertion(rp_id=options["rpId"], challenge=b64url_decode(options["challenge"]), origin=self.origin)

    def send_assertion(self, acs_trans_id, credential: dict, session: requests.Session | None = None) -> requests.Response:
        session = session or self.http
        return session.post(self._url(acs_trans_id, "assertion"), json={"credential": credential}, timeout=HTTP_TIMEOUT)

    def new_session(self) -> requests.Session:
        """Another connection with the same device token (a second thread of the app)."""
        session = requests.Session()
        session.headers["Authorization"] = f"Device {self.device_token}"
        return session

    def approve(self, acs_trans_id) -> requests.Response:
        r = self.proceed(acs_trans_id)
        assert r.status_code == 200, r.text[:500]
        return self.send_assertion(acs_trans_id, self.assertion_for(r.json()))


def register_app_over_http(base_url: str, bank: Bank, *, origin: str = ANDROID_ORIGIN) -> HttpApp:
    """The issuer backend asks for an enrollment token (issuer API), the app registers a new
    platform credential and its push token (SDK API). All real HTTP."""
    base_url = base_url.rstrip("/")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {bank.api_key}"
    r = api.post(
        f"{base_url}/api/v1/cardholders/{bank.cardholder.pk}/device-enrollments",
        headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 201, r.text[:500]
    enrollment_token = r.json()["enrollment_token"]

    sdk = requests.Session()
    r = sdk.post(f"{base_url}/sdk/v1/registrations/options", json={"enrollment_token": enrollment_token}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text[:500]
    authenticator = SoftwareAuthenticator()
    credential = authenticator.create(r.json(), origin=origin)
    push_token = "fcm-e2e-" + secrets.token_urlsafe(32)  # unique: tests read their own pushes
    r = sdk.post(
        f"{base_url}/sdk/v1/registrations",
        json={"enrollment_token": enrollment_token, "credential": credential, "push": {"platform": "fcm", "token": push_token},
              "device_name": "Pixel 9 (e2e)"},
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 201, r.text[:500]
    body = r.json()
    return HttpApp(base_url, authenticator, body["device_id"], body["device_token"], push_token, origin)

