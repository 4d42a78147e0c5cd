"""End-to-end harness: plays the DS, the 3DS Server / merchant and the issuer's backend around the
ACS, over REAL HTTP against pytest-django's `live_server`.

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

import base64
import hashlib
import hmac
import json
import random
import re
import string
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from tests.threeds.builders import areq as build_areq
from tests.threeds.ds_server import rreq_violations

DS_PATH = "/ds/rreq"
NOTIFY_PATH = "/merchant/notify"
ISSUER_PREFIX = "/issuer-backend"
HTTP_TIMEOUT = 30

# A one-time code in an SMS: 6 to 8 digits, not part of a longer number (amounts are grouped).
_CODE = re.compile(r"(?<![\d.,])(\d{6,8})(?![\d.,]\d|\d)")
_NOTIFICATION_PATH = re.compile(
    r"^" + re.escape(ISSUER_PREFIX) + r"/notifications/d1/v1/issuers/(?P<issuer>[A-Za-z0-9]{10})/cards/(?P<card>[^/]+)/3ds/notifications$"
)


def b64url_encode(message: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(message, separators=(",", ":")).encode()).rstrip(b"=").decode()


def b64url_decode(value: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def code_in(body: str) -> str:
    match = _CODE.search(body or "")
    assert match, "no code in the SMS body"
    return match.group(1)


def new_jp_mobile() -> str:
    """A valid, unique-enough Japanese mobile number, so tests never read each other's SMS."""
    return "+8190" + "".join(random.choices(string.digits, k=8))


def new_issuer_id() -> str:
    return "E2E" + "".join(random.choices(string.ascii_uppercase + string.digits, k=7))


# ---------------------------------------------------------------- what the endpoints receive


@dataclass
class ReceivedRReq:
    message: dict | None
    body: bytes
    answered: int | None = None  # the HTTP status we answered; 200 = RRes 01
    at: float = field(default_factory=time.monotonic)

    @property
    def acknowledged(self) -> bool:
        return self.answered == 200


@dataclass
class CResPost:
    """A final CRes form post at notificationURL (what the challenge page hands back)."""

    form: dict
    at: float = field(default_factory=time.monotonic)

    @property
    def cres(self) -> dict:
        return b64url_decode(self.form["cres"])


@dataclass
class IssuerNotification:
    path: str
    headers: dict
    body: bytes
    issuer_id: str
    card_id: str
    at: float = field(default_factory=time.monotonic)

    @property
    def payload(self) -> dict:
        return json.loads(self.body)

    def signature_valid(self, secret: str, tolerance: int = 300) -> bool:
        """What the issuer's backend does: HMAC-SHA256 over "<t>.<raw body>", bounded skew."""
        parts = dict(item.strip().partition("=")[::2] for item in self.headers.get("X-Signature", "").split(","))
        if not parts.get("t", "").isdigit() or "v1" not in parts:
            return False
        if abs(time.time() - int(parts["t"])) > tolerance:
            return False
        expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])


class Endpoints:
    """dsURL, notificationURL and the issuer's notification endpoint on one local server."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self._cond = threading.Condition()
        self._rreq_failures: list[int] = []
        self.rreq_log: list[ReceivedRReq] = []
        self.cres_log: list[CResPost] = []
        self.notification_log: list[IssuerNotification] = []
        self.violations: list[str] = []
        self._httpd = None

    # -------------------------------------------------- lifecycle

    def start(self) -> Endpoints:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload, content_type = endpoints._handle(urlsplit(self.path).path, dict(self.headers), body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="e2e-endpoints", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    @property
    def ds_url(self) -> str:
        return self.url + DS_PATH

    @property
    def notification_url(self) -> str:
        return self.url + NOTIFY_PATH

    @property
    def issuer_base_url(self) -> str:
        return self.url + ISSUER_PREFIX

    # -------------------------------------------------- programming

    def fail_rreqs(self, times: int, status: int = 500) -> None:
        """The DS answers the next `times` RReqs with this HTTP status, then RRes 01 again."""
        with self._cond:
            self._rreq_failures = [status] * times

    # -------------------------------------------------- handling

    def _handle(self, path: str, headers: dict, body: bytes) -> tuple[int, bytes, str]:
        if path == DS_PATH:
            return self._rreq(body)
        if path == NOTIFY_PATH:
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            with self._cond:
                self.cres_log.append(CResPost(form))
                self._cond.notify_all()
            return 200, b"<!doctype html><html><body><p>Challenge finished.</p></body></html>", "text/html; charset=utf-8"
        match = _NOTIFICATION_PATH.match(path)
        if match:
            with self._cond:
                self.notification_log.append(IssuerNotification(path, headers, body, match["issuer"], match["card"]))
                self._cond.notify_all()
            return 204, b"", "text/plain"
        with self._cond:
            self.violations.append(f"a POST to an unknown path {path}")
        return 404, b"not found", "text/plain"

    def _rreq(self, body: bytes) -> tuple[int, bytes, str]:
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        received = ReceivedRReq(message if isinstance(message, dict) else None, body)
        with self._cond:
            self.violations += [f"RReq {(received.message or {}).get('acsTransID')}: {p}" for p in rreq_violations(message)]
            failure = self._rreq_failures.pop(0) if self._rreq_failures else None
            received.answered = failure or 200
            self.rreq_log.append(received)
            self._cond.notify_all()
        if failure:
            return failure, b'{"error": "DS temporarily unavailable"}', "application/json"
        rres = {
            "messageType": "RRes",
            "messageVersion": message.get("messageVersion"),
            "threeDSServerTransID": message.get("threeDSServerTransID"),
            "acsTransID": message.get("acsTransID"),
            "dsTransID": message.get("dsTransID"),
            "resultsStatus": "01",
        }
        if message.get("sdkTransID"):
            rres["sdkTransID"] = message["sdkTransID"]
        return 200, json.dumps(rres).encode(), "application/json"

    # -------------------------------------------------- reading back

    def rreqs(self, acs_trans_id=None) -> list[ReceivedRReq]:
        with self._cond:
            return [r for r in self.rreq_log if acs_trans_id is None or (r.message or {}).get("acsTransID") == str(acs_trans_id)]

    def acknowledged(self, acs_trans_id=None) -> list[ReceivedRReq]:
        return [r for r in self.rreqs(acs_trans_id) if r.acknowledged]

    def cres_posts(self) -> list[CResPost]:
        with self._cond:
            return list(self.cres_log)

    def notifications(self, acs_trans_id=None) -> list[IssuerNotification]:
        with self._cond:
            found = list(self.notification_log)
        if acs_trans_id is None:
            return found
        return [n for n in found if n.payload.get("details", {}).get("acsTransactionId") == str(acs_trans_id)]

    def _wait(self, found, what: str, timeout: float):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = found()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{what} within {timeout:.0f}s")
                self._cond.wait(min(left, 0.5))

    def wait_rreq(self, acs_trans_id, timeout: float = 20.0) -> dict:
        """The RReq of this transaction that the DS acknowledged (RRes 01)."""
        acs_trans_id = str(acs_trans_id)
        found = self._wait(
            lambda: [r for r in self.rreq_log if r.acknowledged and (r.message or {}).get("acsTransID") == acs_trans_id],
            f"no acknowledged RReq for {acs_trans_id}", timeout,
        )
        return found[0].message

    def wait_notification(self, acs_trans_id, timeout: float = 20.0) -> IssuerNotification:
        acs_trans_id = str(acs_trans_id)
        found = self._wait(
            lambda: [n for n in self.notification_log if json.loads(n.body).get("details", {}).get("acsTransactionId") == acs_trans_id],
            f"no 3DS notification for {acs_trans_id}", timeout,
        )
        return found[0]

    def wait_cres_post(self, acs_trans_id, timeout: float = 10.0) -> CResPost:
        acs_trans_id = str(acs_trans_id)
        found = self._wait(
            lambda: [p for p in self.cres_log if "cres" in p.form and p.cres.get("acsTransID") == acs_trans_id],
            f"no final CRes at notificationURL for {acs_trans_id}", timeout,
        )
        return found[0]


# ---------------------------------------------------------------- the cardholder's phone


class TwilioInbox:
    """SMS that the fake Twilio server accepted (worker mode: the real twilio client sent them)."""

    def __init__(self, server):
        self.server = server

    def bodies(self, to: str) -> list[str]:
        return [r.body for r in self.server.accepted(to=to)]


class FileInbox:
    """SMS written by the `file` backend (in-process mode: tasks run in the server's process)."""

    def __init__(self, path):
        self.path = Path(path)

    def bodies(self, to: str) -> list[str]:
        if not self.path.exists():
            return []
        lines = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [line["body"] for line in lines if line.get("to") == to]


def wait_code(inbox, to: str, *, nth: int = 1, timeout: float = 20.0) -> str:
    """The code of the nth SMS to `to` (1 = the first), waiting until it arrives."""
    deadline = time.monotonic() + timeout
    while True:
        bodies = inbox.bodies(to)
        if len(bodies) >= nth:
            return code_in(bodies[nth - 1])
        if time.monotonic() > deadline:
            pytest.fail(f"SMS #{nth} to {to} did not arrive within {timeout:.0f}s (got {len(bodies)})")
        time.sleep(0.05)


def other_code(code: str) -> str:
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


# ---------------------------------------------------------------- the challenge page


class ChallengePage(HTMLParser):
    """Forms (action, hidden fields, other inputs) and the text of an ACS page."""

    def __init__(self, response: requests.Response):
        super().__init__(convert_charrefs=True)
        self.response = response
        self.status_code = response.status_code
        self.forms: list[dict] = []
        self.texts: list[str] = []
        self.message = ""
        self._in_message = False
        self.feed(response.text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "hidden": {}, "inputs": []})
        elif tag == "input" and self.forms and attrs.get("name"):
            if attrs.get("type") == "hidden":
                self.forms[-1]["hidden"][attrs["name"]] = attrs.get("value") or ""
            else:
                self.forms[-1]["inputs"].append(attrs["name"])
        elif tag == "p" and "msg" in (attrs.get("class") or "").split():
            self._in_message = True

    def handle_endtag(self, tag):
        if tag == "p":
            self._in_message = False

    def handle_data(self, data):
        if data.strip():
            self.texts.append(data.strip())
            if self._in_message:
                self.message += data.strip()

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    def form_with(self, name: str) -> dict | None:
        return next((f for f in self.forms if name in f["hidden"] or name in f["inputs"]), None)

    @property
    def is_final(self) -> bool:
        return self.form_with("cres") is not None


# ---------------------------------------------------------------- the 3DS Server and the SDK


class Acs:
    """The ACS under test, seen from outside: base URL, our endpoints, the cardholder's phone."""

    def __init__(self, base_url: str, endpoints: Endpoints, inbox):
        self.base_url = base_url.rstrip("/")
        self.endpoints = endpoints
        self.inbox = inbox
        self.http = requests.Session()

    def areq(self, *, pan: str, channel: str = "01", **overrides) -> Authentication:
        overrides.setdefault("dsURL", self.endpoints.ds_url)
        if channel == "02":
            overrides.setdefault("notificationURL", self.endpoints.notification_url)
        message = build_areq(pan=pan, channel=channel, **overrides)
        response = self.http.post(f"{self.base_url}/3ds/v2/areq", json=message, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text[:500]
        assert response.headers["Content-Type"].startswith("application/json")
        return Authentication(self, message, response.json())

    def code_for(self, phone: str, *, nth: int = 1, timeout: float = 20.0) -> str:
        return wait_code(self.inbox, phone, nth=nth, timeout=timeout)

    def api(self, api_key: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {api_key}"
        return session


class Authentication:
    def __init__(self, acs: Acs, message: dict, ares: dict):
        self.acs = acs
        self.message = message
        self.ares = ares

    @property
    def acs_trans_id(self) -> str:
        return self.ares["acsTransID"]

    @property
    def trans_status(self) -> str:
        return self.ares["transStatus"]

    def app(self) -> AppChallenge:
        return AppChallenge(self)

    def browser(self, *, window: str = "05", session_data: str | None = "eyJvcmRlciI6IjQyIn0") -> BrowserChallenge:
        return BrowserChallenge(self, window=window, session_data=session_data)

    def rreq(self, timeout: float = 20.0) -> dict:
        return self.acs.endpoints.wait_rreq(self.acs_trans_id, timeout=timeout)


class AppChallenge:
    """The 3DS SDK: JSON CReqs with a counter that advances on every CRes."""

    def __init__(self, auth: Authentication):
        self.auth = auth
        self.counter = 0
        self.acs_counter = 0

    def send(self, **fields) -> dict:
        message = self.auth.message
        creq = {
            "messageType": "CReq",
            "messageVersion": message["messageVersion"],
            "threeDSServerTransID": message["threeDSServerTransID"],
            "acsTransID": self.auth.acs_trans_id,
            "sdkTransID": message["sdkTransID"],
            "sdkCounterStoA": f"{self.counter:03d}",
            **fields,
        }
        response = self.auth.acs.http.post(f"{self.auth.acs.base_url}/3ds/v2/creq", json=creq, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text[:500]
        answer = response.json()
        if answer.get("messageType") == "CRes":
            assert answer["acsCounterAtoS"] == f"{self.acs_counter:03d}"
            assert answer["acsTransID"] == self.auth.acs_trans_id and answer["sdkTransID"] == message["sdkTransID"]
            self.counter += 1
            self.acs_counter += 1
        return answer

    def start(self) -> dict:
        return self.send()

    def submit(self, code: str) -> dict:
        return self.send(challengeDataEntry=code)

    def resend(self) -> dict:
        return self.send(resendChallenge="Y")

    def cancel(self) -> dict:
        return self.send(challengeCancel="01")


class BrowserChallenge:
    """The merchant's form post into the iframe, then the cardholder's clicks on the page."""

    def __init__(self, auth: Authentication, *, window: str, session_data: str | None):
        self.auth = auth
        self.window = window
        self.session_data = session_data
        self.page: ChallengePage | None = None

    @property
    def acs_url(self) -> str:
        return self.auth.ares["acsURL"]

    def creq(self) -> dict:
        message = self.auth.message
        return {
            "threeDSServerTransID": message["threeDSServerTransID"],
            "acsTransID": self.auth.acs_trans_id,
            "challengeWindowSize": self.window,
            "messageVersion": message["messageVersion"],
            "messageType": "CReq",
        }

    def _post(self, url: str, form: dict) -> ChallengePage:
        response = self.auth.acs.http.post(url, data=form, timeout=HTTP_TIMEOUT, allow_redirects=False)
        assert response.headers["Content-Type"].startswith("text/html"), response.headers["Content-Type"]
        self.page = ChallengePage(response)
        return self.page

    def start(self) -> ChallengePage:
        form = {"creq": b64url_encode(self.creq())}
        if self.session_data is not None:
            form["threeDSSessionData"] = self.session_data
        return self._post(self.acs_url, form)

    def act(self, action: str, **fields) -> ChallengePage:
        form = self.page.form_with("pageToken")
        assert form is not None, f"no challenge form on the page: {self.page.text[:300]}"
        return self._post(urljoin(self.acs_url, form["action"]), {**form["hidden"], "action": action, **fields})

    def submit(self, code: str) -> ChallengePage:
        return self.act("submit", challengeDataEntry=code)

    def resend(self) -> ChallengePage:
        return self.act("resend")

    def cancel(self) -> ChallengePage:
        return self.act("cancel")

    def post_final(self) -> CResPost:
        """What the final page's script does: post its form (the CRes) to notificationURL."""
        form = self.page.form_with("cres")
        assert form is not None, f"not the final page: {self.page.text[:300]}"
        target = urljoin(self.acs_url, form["action"])
        assert target == self.auth.message["notificationURL"]
        response = requests.post(target, data=form["hidden"], timeout=HTTP_TIMEOUT)
        assert response.status_code == 200
        return self.auth.acs.endpoints.wait_cres_post(self.auth.acs_trans_id)


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
    from apps.cards.models import Phone
    from apps.issuers.services import api_key_create, issuer_create
    from apps.threeds.models import RiskPolicy
    from tests.factories import CardholderFactory, make_card, new_pan

    issuer, secret = issuer_create(issuer_id=new_issuer_id(), name="E2E Bank", country="JP", notification_base_url=notification_base_url)
    _, api_key = api_key_create(issuer=issuer, name="e2e", created_by="tests")
    RiskPolicy.objects.create(issuer=issuer, **{"new_merchant_weight": 0, **risk})
    cardholder = CardholderFactory(issuer=issuer, locale="en")
    phone = new_jp_mobile()
    Phone.objects.create(cardholder=cardholder, number=phone, is_primary=True, verified=True)
    pan = pan or new_pan()
    card = make_card(cardholder=cardholder, pan=pan, status=card_status)
    return Bank(issuer, secret, api_key, cardholder, phone, card, pan)


@pytest.fixture
def endpoints():
    server = Endpoints().start()
    yield server
    server.stop()
