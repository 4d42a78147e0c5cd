"""The ACS under test seen from outside: the DS's AReq, then the challenge as the 3DS SDK (app
channel, JWE CReqs over the EMV secure session) or as the merchant's page and the cardholder's browser (browser channel).

Each exchange checks what every 3DS party checks (HTTP 200, the message type, the echoed
identifiers, the counters) and raises `Unexpected` otherwise; an Erro in answer to a CReq is
returned, so a caller can look at it. A `narrator` (any callable `(event, **details)`) hears
each message before it is sent and after it arrived: the command prints them."""

from __future__ import annotations

from typing import Callable
from urllib.parse import urljoin

import requests

from apps.threeds import app_crypto
from apps.threeds.simulator import messages
from apps.threeds.simulator.endpoints import CResPost, Endpoints
from apps.threeds.simulator.errors import Unexpected, Unreachable
from apps.threeds.simulator.page import ChallengePage
from apps.threeds.simulator.phone import Inbox, wait_code
from apps.threeds.simulator.transport import HttpTransport, Reply, Transport

AREQ_PATH = "/3ds/v2/areq"
CREQ_PATH = "/3ds/v2/creq"
JOSE_CONTENT_TYPE = "application/jose; charset=UTF-8"
Narrator = Callable[..., None]


def _silent(event: str, **details) -> None:
    pass


def expect_type(message: dict, expected: str, what: str) -> None:
    if message.get("messageType") == "Erro":
        raise Unexpected(
            f"{what}: Erro {message.get('errorCode')} {message.get('errorDescription', '')} "
            f"(errorDetail: {message.get('errorDetail', '')})"
        )
    if message.get("messageType") != expected:
        raise Unexpected(f"{what}: messageType {message.get('messageType')!r} instead of {expected}")


def expect_echo(message: dict, reference: dict, names: tuple[str, ...], what: str) -> None:
    for name in names:
        if str(message.get(name, "")).lower() != str(reference.get(name, "")).lower():
            raise Unexpected(f"{what}: {name} {message.get(name)!r} does not echo {reference.get(name)!r}")


class Acs:
    """The ACS reached through a transport; `endpoints` receive its RReqs, final CRes posts and
    notifications; `inbox` is the cardholder's phone."""

    def __init__(self, transport: Transport | str, endpoints: Endpoints | None = None, inbox: Inbox | None = None, *,
                 narrator: Narrator | None = None):
        self.transport = HttpTransport(transport) if isinstance(transport, str) else transport
        self.endpoints = endpoints
        self.inbox = inbox
        self.narrate = narrator or _silent
        self.trust_anchors: list = []  # the SDK's roots for acsSignedContent (x509 certificates)

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    @property
    def http(self) -> requests.Session:
        """The requests session of an HTTP transport (for calls the simulator does not model)."""
        return self.transport.session

    def post_json(self, url: str, message: dict, what: str) -> dict:
        """POST a JSON message; the answer must be HTTP 200 with a JSON object."""
        try:
            reply = self.transport.post(url, json=message)
        except Unreachable as exc:
            raise Unreachable(f"{what}: {exc}") from None
        if reply.status_code != 200:
            raise Unexpected(f"{what}: HTTP {reply.status_code} from {reply.url or url}: {reply.text[:300]}")
        if not reply.content_type.startswith("application/json"):
            raise Unexpected(f"{what}: the answer is not JSON ({reply.content_type!r}): {reply.text[:300]}")
        try:
            answer = reply.json()
        except ValueError:
            raise Unexpected(f"{what}: the answer is not JSON: {reply.text[:300]}") from None
        if not isinstance(answer, dict):
            raise Unexpected(f"{what}: the answer is not a JSON object")
        return answer

    def post_form(self, url: str, form: dict, what: str) -> Reply:
        """A browser's form post; the answer must be an HTML page."""
        try:
            reply = self.transport.post(url, form=form)
        except Unreachable as exc:
            raise Unreachable(f"{what}: {exc}") from None
        if "text/html" not in reply.content_type:
            raise Unexpected(f"{what}: HTTP {reply.status_code}, expected an HTML page, got {reply.content_type!r}")
        return reply

    # -------------------------------------------------- the DS's AReq

    def send_areq(self, message: dict, *, sdk_ephem_key=None) -> Authentication:
        """Send this AReq; the ARes must be an ARes echoing the AReq's identifiers. On the app
        channel `sdk_ephem_key` is the key pair whose public half is the AReq's sdkEphemPubKey."""
        self.narrate("areq", url=self.transport_url(AREQ_PATH), message=message)
        ares = self.post_json(AREQ_PATH, message, "AReq")
        self.narrate("ares", message=ares)
        check_ares(message, ares)
        auth = Authentication(self, message, ares)
        auth.sdk_ephem_key = sdk_ephem_key
        return auth

    def areq(self, *, pan: str, channel: str = messages.APP, **overrides) -> Authentication:
        """An AReq from `messages.areq` whose dsURL and notificationURL are our endpoints. On the
        app channel the SDK's ephemeral key pair is made here; its public half goes in the AReq
        (sdkEphemPubKey), its private half opens the secure session after the ARes."""
        if self.endpoints is not None:
            overrides.setdefault("dsURL", self.endpoints.ds_url)
            if channel == messages.BROWSER:
                overrides.setdefault("notificationURL", self.endpoints.notification_url)
        sdk_ephem_key = None
        if channel == messages.APP and "sdkEphemPubKey" not in overrides:
            sdk_ephem_key = app_crypto.acs_ephem_key_new()  # a fresh P-256 key pair, whoever makes it
            overrides["sdkEphemPubKey"] = app_crypto.ephem_pub_key_jwk(sdk_ephem_key)
        return self.send_areq(messages.areq(pan=pan, channel=channel, **overrides), sdk_ephem_key=sdk_ephem_key)

    def transport_url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # -------------------------------------------------- the cardholder and the issuer

    def code_for(self, phone: str, *, nth: int = 1, timeout: float = 20.0) -> str:
        return wait_code(self.inbox, phone, nth=nth, timeout=timeout)

    def api(self, api_key: str) -> requests.Session:
        """A session of the issuer API with this key (Bearer)."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {api_key}"
        return session


def check_ares(areq: dict, ares: dict) -> None:
    """What a DS checks in an ARes before passing it on."""
    expect_type(ares, "ARes", "ARes")
    expect_echo(ares, areq, ("messageVersion", "threeDSServerTransID", "dsTransID"), "ARes")
    if not messages.UUID.match(str(ares.get("acsTransID", ""))):
        raise Unexpected("ARes: acsTransID is not a UUID")
    status = ares.get("transStatus")
    if status not in ("Y", "A", "N", "U", "R", "C"):
        raise Unexpected(f"ARes: transStatus {status!r}")
    if status in ("Y", "A") and (not ares.get("eci") or len(ares.get("authenticationValue", "")) != 28):
        raise Unexpected("ARes: a Y/A result without eci or a 28-character authenticationValue")
    if status in ("N", "U", "R") and not ares.get("transStatusReason"):
        raise Unexpected("ARes: an N/U/R result without transStatusReason")
    if status == "C":
        if areq["deviceChannel"] == messages.BROWSER and not ares.get("acsURL"):
            raise Unexpected("ARes: a browser challenge without acsURL")
        if areq["deviceChannel"] == messages.APP and str(ares.get("sdkTransID", "")).lower() != str(areq.get("sdkTransID")).lower():
            raise Unexpected("ARes: sdkTransID not echoed")


def check_final(cres: dict) -> dict:
    if cres.get("challengeCompletionInd") != "Y":
        raise Unexpected("final CRes: challengeCompletionInd is not Y")
    if cres.get("transStatus") not in ("Y", "A", "N", "U", "R"):
        raise Unexpected(f"final CRes: transStatus {cres.get('transStatus')!r}")
    return cres


class Authentication:
    """One AReq and its ARes; the challenge, if any, goes on from here."""

    def __init__(self, acs: Acs, message: dict, ares: dict):
        self.acs = acs
        self.message = message
        self.ares = ares
        self.sdk_ephem_key = None  # the app channel's SDK key pair, when Acs.areq made it

    @property
    def acs_trans_id(self) -> str:
        return self.ares["acsTransID"]

    @property
    def trans_status(self) -> str:
        return self.ares["transStatus"]

    def app(self, *, enc: str = app_crypto.A128CBC_HS256) -> AppChallenge:
        return AppChallenge(self, enc=enc)

    def browser(self, *, window: str = "05", session_data: str | None = "eyJvcmRlciI6IjQyIn0") -> BrowserChallenge:
        return BrowserChallenge(self, window=window, session_data=session_data)

    def rreq(self, timeout: float = 20.0) -> dict:
        return self.acs.endpoints.wait_rreq(self.acs_trans_id, timeout=timeout)


class AppChallenge:
    """The 3DS SDK (SPEC §3.3): acsSignedContent verified, the session key derived, then JWE CReqs
    whose counter advances on every CRes, which must echo it. Without `Acs.trust_anchors` the
    chain is checked against its own last certificate (consistency, not trust)."""

    def __init__(self, auth: Authentication, *, enc: str = app_crypto.A128CBC_HS256):
        self.auth = auth
        self.enc = enc
        self.counter = 0
        if auth.sdk_ephem_key is None:
            raise Unexpected("app challenge: the AReq was not sent by Acs.areq (no SDK key pair)")
        signed = auth.ares.get("acsSignedContent")
        if not isinstance(signed, str):
            raise Unexpected("ARes: an app challenge without acsSignedContent")
        try:
            anchors = auth.acs.trust_anchors or [app_crypto.acs_signed_content_chain_top(signed)]
            payload = app_crypto.acs_signed_content_verify(signed, trust_anchors=anchors)
        except Exception as exc:
            raise Unexpected(f"ARes: acsSignedContent does not verify ({exc})") from None
        if payload.get("sdkEphemPubKey") != auth.message["sdkEphemPubKey"] or payload.get("acsTransID") != auth.acs_trans_id:
            raise Unexpected("ARes: acsSignedContent is not for this AReq")
        self.session_key = app_crypto.sdk_session_key_derive(
            sdk_ephem_key=auth.sdk_ephem_key, acs_ephem_pub_key=payload["acsEphemPubKey"],
            sdk_reference_number=auth.message["sdkReferenceNumber"])

    @property
    def ares(self) -> dict:
        return self.auth.ares

    @property
    def acs_counter(self) -> int:
        return self.counter

    def send(self, note: str = "", **fields) -> dict:
        """CReq number `counter` with these elements, as JWE; the CRes (decrypted, checked) or a
        plain JSON Erro."""
        acs = self.auth.acs
        creq = messages.app_creq(self.auth.message, self.auth.acs_trans_id, self.counter, **fields)
        what = f"CReq #{self.counter}"
        acs.narrate("creq", counter=self.counter, note=note, url=acs.transport_url(CREQ_PATH), message=creq)
        body = app_crypto.creq_encrypt(creq, session_key=self.session_key, acs_trans_id=self.auth.acs_trans_id, enc=self.enc)
        try:
            reply = acs.transport.post(CREQ_PATH, body=body, content_type=JOSE_CONTENT_TYPE)
        except Unreachable as exc:
            raise Unreachable(f"{what}: {exc}") from None
        if reply.status_code != 200:
            raise Unexpected(f"{what}: HTTP {reply.status_code}: {reply.text[:300]}")
        if reply.content_type.startswith("application/jose"):
            try:
                answer = app_crypto.cres_decrypt(reply.content, session_key=self.session_key, acs_trans_id=self.auth.acs_trans_id)
            except app_crypto.DataDecryptionFailure as exc:
                raise Unexpected(f"CRes #{self.counter}: does not decrypt ({exc})") from None
        elif reply.content_type.startswith("application/json"):
            answer = reply.json()  # an Erro is plain JSON
        else:
            raise Unexpected(f"{what}: the answer is neither JOSE nor JSON ({reply.content_type!r})")
        acs.narrate("cres", counter=self.counter, message=answer)
        if answer.get("messageType") == "CRes":
            what = f"CRes #{self.counter}"
            expect_echo(answer, creq, ("threeDSServerTransID", "acsTransID", "sdkTransID", "messageVersion"), what)
            if answer.get("acsCounterAtoS") != f"{self.counter:03d}":
                raise Unexpected(f"{what}: acsCounterAtoS {answer.get('acsCounterAtoS')!r} instead of {self.counter:03d}")
            self.counter += 1
        return answer

    def start(self, note: str = "") -> dict:
        return self.send(note)

    def submit(self, code: str, note: str = "") -> dict:
        return self.send(note, challengeDataEntry=code)

    def resend(self, note: str = "") -> dict:
        return self.send(note, resendChallenge="Y")

    def cancel(self, note: str = "") -> dict:
        return self.send(note, challengeCancel="01")


class BrowserChallenge:
    """The merchant's form post into the iframe, then the cardholder's clicks on the page, then
    what the final page's script does: post the CRes to notificationURL."""

    def __init__(self, auth: Authentication, *, window: str = "05", session_data: str | None = None):
        self.auth = auth
        self.window = window
        self.session_data = session_data
        self.page: ChallengePage | None = None

    @property
    def acs_url(self) -> str:
        return self.auth.ares["acsURL"]

    def creq(self) -> dict:
        return messages.browser_creq(self.auth.message, self.auth.acs_trans_id, window=self.window)

    def _post(self, url: str, form: dict, what: str) -> ChallengePage:
        self.page = ChallengePage.of(self.auth.acs.post_form(url, form, what))
        self.auth.acs.narrate("page", page=self.page)
        return self.page

    def start(self) -> ChallengePage:
        creq = self.creq()
        form = {"creq": messages.b64url_encode(creq)}
        if self.session_data is not None:
            form["threeDSSessionData"] = self.session_data
        self.auth.acs.narrate("creq_form", url=self.acs_url, message=creq, session_data=self.session_data)
        return self._post(self.acs_url, form, "CReq post")

    def act(self, action: str, note: str = "", **fields) -> ChallengePage:
        form = self.page.form_with("pageToken")
        if form is None:
            raise Unexpected(f"The challenge page has no form to post back: {self.page.text[:300]}")
        target = urljoin(self.acs_url, form["action"])
        fields = {**form["hidden"], "action": action, **fields}
        self.auth.acs.narrate("page_form", note=note or action, url=target, form=fields)
        return self._post(target, fields, note or action)

    def submit(self, code: str, note: str = "") -> ChallengePage:
        return self.act("submit", note, challengeDataEntry=code)

    def resend(self, note: str = "") -> ChallengePage:
        return self.act("resend", note)

    def cancel(self, note: str = "") -> ChallengePage:
        return self.act("cancel", note)

    def post_final(self) -> CResPost:
        """What the final page's script does in a browser: post its form (the CRes) to
        notificationURL, which must be the AReq's; the post as our endpoints received it."""
        form = self.page.form_with("cres") if self.page else None
        if form is None:
            raise Unexpected(f"The challenge did not end: {(self.page.message or self.page.text[:300]) if self.page else ''}")
        target = urljoin(self.acs_url, form["action"])
        if target != self.auth.message["notificationURL"]:
            raise Unexpected(f"The final page posts to {target}, not to the AReq's notificationURL")
        self.auth.acs.narrate("final_form", url=target)
        try:
            response = requests.post(target, data=form["hidden"], timeout=30)
        except requests.RequestException as exc:
            raise Unreachable(f"Posting the final CRes: {exc}") from None
        if response.status_code != 200:
            raise Unexpected(f"notificationURL answered HTTP {response.status_code}")
        return self.auth.acs.endpoints.wait_cres_post(self.auth.acs_trans_id)
