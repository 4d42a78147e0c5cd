"""End-to-end harness: plays the DS, the 3DS Server / merchant and the issuer's backend around the
ACS, over REAL HTTP against pytest-django's `live_server`. The parties are those of
`apps.threeds.simulator`, the package `manage.py simulate_3ds` runs on; this module adds what
only tests need (an issuer ready to serve, the DS's EMV checks on every RReq, the fixture).

- `Endpoints` is one local HTTP server (a ThreadingHTTPServer in a thread of the pytest process)
  that a Celery worker process reaches like the real parties:
    * the DS's dsURL: receives RReqs, answers RRes resultsStatus 01, or fails N times first
      (`fail_rreqs(2)`), checks every RReq against the EMV rules a DS applies;
    * the merchant's notificationURL: receives the final CRes form posts of the browser flow;
    * the issuer backend's 3DS notification endpoint (`issuer_base_url` is what goes into
      `Issuer.notification_base_url`): receives the signed notifications of SPEC §5.4.
- `Acs` sends AReqs with `requests`, then drives the challenge: app CReqs (`AppChallenge`, JSON)
  or the browser form posts (`BrowserChallenge`, the challenge page's hidden fields parsed with
  html.parser, the final page's form posted to notificationURL as a browser would).
- Codes are read like a cardholder reads a phone: from the fake Twilio server (`TwilioInbox`,
  when a real worker sends the SMS through the real twilio client) or from the `file` SMS
  backend (`FileInbox`, when tasks run in the server's process).

    endpoints = Endpoints().start()
    acs = Acs(live_server.url, endpoints, TwilioInbox(twilio_server))
    auth = acs.areq(pan=PAN, channel="01", threeDSRequestorChallengeInd="04")
    app = auth.app(); app.start(); final = app.submit(acs.code_for(phone))
    rreq = endpoints.wait_rreq(auth.acs_trans_id)
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

import pytest

from apps.threeds.simulator.client import Acs, AppChallenge, Authentication, BrowserChallenge  # noqa: F401 (re-exported)
from apps.threeds.simulator.endpoints import (  # noqa: F401 (re-exported)
    DS_PATH, ISSUER_PREFIX, NOTIFY_PATH, CResPost, Endpoints, IssuerNotification, ReceivedRReq,
)
from apps.threeds.simulator.messages import b64url_decode, b64url_encode  # noqa: F401 (re-exported)
from apps.threeds.simulator.messages import wrong_code as other_code  # noqa: F401 (re-exported)
from apps.threeds.simulator.page import ChallengePage  # noqa: F401 (re-exported)
from apps.threeds.simulator.phone import ProviderInbox as TwilioInbox  # noqa: F401 (re-exported)
from apps.threeds.simulator.phone import SmsFile as FileInbox  # noqa: F401 (re-exported)
from apps.threeds.simulator.phone import code_in, wait_code  # noqa: F401 (re-exported)
from tests.threeds.ds_server import rreq_violations

HTTP_TIMEOUT = 30


def new_jp_mobile() -> str:
    """A valid, unique-enough Japanese mobile number, so tests never read each other's SMS."""
    return "+8190" + "".join(random.choices(string.digits, k=8))


def new_issuer_id() -> str:
    return "E2E" + "".join(random.choices(string.ascii_uppercase + string.digits, k=7))


# ---------------------------------------------------------------- an issuer ready to serve


@dataclass
class Bank:
    issuer: object
    webhook_secret: str
    api_key: str
    cardholder: object
    phone: str
    card: object
    pan: str


def make_bank(*, notification_base_url: str = "", pan: str | None = None, card_status: str = "active", **risk) -> Bank:
    """An issuer made the way bootstrap_issuer makes one (default OTP policy, webhook secret, API
    key), a risk policy that lets an ordinary purchase through and challenges on indicator 04,
    a cardholder with a verified primary JP mobile, and an active card."""
    from apps.issuers.services import issuer_create
    from apps.threeds.models import RiskPolicy
    from tests.factories import CardholderFactory, make_api_key, make_card, make_phone, new_pan

    issuer, secret = issuer_create(issuer_id=new_issuer_id(), name="E2E Bank", country="JP", notification_base_url=notification_base_url)
    api_key = make_api_key(issuer, name="e2e")
    RiskPolicy.objects.create(issuer=issuer, **{"new_merchant_weight": 0, **risk})
    cardholder = CardholderFactory(issuer=issuer, locale="en")
    phone = new_jp_mobile()
    make_phone(cardholder, phone)
    pan = pan or new_pan()
    card = make_card(cardholder=cardholder, pan=pan, status=card_status)
    return Bank(issuer, secret, api_key, cardholder, phone, card, pan)


@pytest.fixture
def endpoints():
    """dsURL (every RReq checked as a DS would: `violations`), notificationURL, issuer backend."""
    server = Endpoints(rreq_check=rreq_violations).start()
    yield server
    server.stop()
