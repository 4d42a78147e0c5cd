"""`manage.py simulate_3ds`: one whole 3-D Secure authentication against a RUNNING server (SPEC §5.7).

The command plays everyone around the ACS:

- the Directory Server: it sends the AReq, and a small local HTTP server of its own receives the
  RReq at the AReq's dsURL and answers an RRes with resultsStatus 01;
- the 3DS Server / merchant: for the browser channel it posts the CReq form to acsURL like a
  merchant page, and the same local server receives the final CRes at the notificationURL; for
  the app channel it sends the JSON CReqs the 3DS SDK would send;
- the cardholder: it reads the code from the SMS file of the `file` SMS backend (the
  simulation of looking at the phone, so the code is printed) and types it in.

At the end, with --api-key, it fetches the Stripe import payload of the transaction.

Every step is printed. The PAN never is: the AReq shows acctNumber masked to its last 4 digits.
Only the standard library and requests are used for HTTP, so the command exercises the server
exactly as outside systems do.

Exit status: 0 when the authentication ended as expected (Y or A by default; N with --cancel;
see --expect), 1 on any unexpected answer (HTTP error, Erro, a missing or wrong element, no RReq,
no SMS), 2 when it ended with another result than expected.
"""

from __future__ import annotations

import base64
import json
import queue
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

EXIT_UNEXPECTED = 1
EXIT_OTHER_RESULT = 2

FALLBACK_DEMO_PAN = "4111111111111111"
ZERO_EXPONENT_CURRENCIES = {"392", "410", "704", "152", "348"}  # JPY, KRW, VND, CLP, HUF (ISO 4217 minor unit 0)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# "+81 ••• •••• 5678": the country code and the last four digits of the number the code went to.
_MASKED_PHONE = re.compile(r"\+(\d{1,3})[\s\u2022*.\-]+(\d{4})\b")
# A code is a run of 6 to 8 digits not part of a longer number (amounts are grouped: 1,500).
_CODE = re.compile(r"(?<![\d.,])(\d{6,8})(?![\d.,]\d|\d)")


def demo_pan() -> str:
    """The first active Visa card that seed_demo enrolls (its cardholder has a verified JP phone)."""
    try:
        from apps.core.management.commands.seed_demo import CARDS

        for card_id, _external_id, pan, status in CARDS:
            if status == "active" and pan.startswith("4") and "cb" not in card_id:
                return pan
    except Exception:  # pragma: no cover - seed data renamed: the well-known test number
        pass
    return FALLBACK_DEMO_PAN


def mask_pan(pan: str) -> str:
    return "•" * (len(pan) - 4) + pan[-4:]


def b64url_encode(message: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(message, separators=(",", ":")).encode()).rstrip(b"=").decode()


def b64url_decode(value: str) -> dict:
    value = value.strip()
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


class Unexpected(Exception):
    """An answer the simulation did not expect: exit 1."""


# ---------------------------------------------------------------- the DS and the merchant side


@dataclass
class Received:
    path: str
    body: bytes
    content_type: str
    at: float = field(default_factory=time.monotonic)

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True).items()}


class LocalEndpoints:
    """A tiny HTTP server in a thread: dsURL (RReq → RRes 01) and notificationURL (final CRes)."""

    DS_PATH = "/ds/rreq"
    NOTIFY_PATH = "/merchant/notify"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_base_url: str = ""):
        self.rreqs: queue.Queue[Received] = queue.Queue()
        self.cres_posts: queue.Queue[Received] = queue.Queue()
        self.unexpected: list[str] = []
        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received = Received(self.path, body, self.headers.get("Content-Type", ""))
                path = urlsplit(self.path).path
                if path == endpoints.DS_PATH:
                    try:
                        rreq = received.json()
                    except ValueError:
                        rreq = None
                    if not isinstance(rreq, dict):
                        endpoints.unexpected.append("an RReq that is not a JSON object")
                        return self._reply(400, b'{"error": "not JSON"}', "application/json")
                    endpoints.rreqs.put(received)
                    return self._reply(200, json.dumps(rres_for(rreq)).encode(), "application/json")
                if path == endpoints.NOTIFY_PATH:
                    endpoints.cres_posts.put(received)
                    page = b"<!doctype html><html><body><p>Challenge finished.</p></body></html>"
                    return self._reply(200, page, "text/html; charset=utf-8")
                endpoints.unexpected.append(f"a POST to {path}")
                return self._reply(404, b"not found", "text/plain")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: the command prints what matters
                pass

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.base_url = (public_base_url or f"http://{host}:{self._httpd.server_address[1]}").rstrip("/")

    @property
    def ds_url(self) -> str:
        return self.base_url + self.DS_PATH

    @property
    def notification_url(self) -> str:
        return self.base_url + self.NOTIFY_PATH

    def __enter__(self) -> LocalEndpoints:
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def rres_for(rreq: dict) -> dict:
    rres = {
        "messageType": "RRes",
        "messageVersion": rreq.get("messageVersion"),
        "threeDSServerTransID": rreq.get("threeDSServerTransID"),
        "acsTransID": rreq.get("acsTransID"),
        "dsTransID": rreq.get("dsTransID"),
        "resultsStatus": "01",
    }
    if rreq.get("sdkTransID"):
        rres["sdkTransID"] = rreq["sdkTransID"]
    return rres


# ---------------------------------------------------------------- the cardholder's phone


class SmsFile:
    """The `file` SMS backend's JSON lines; only lines written after the simulation started."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self.seen = 0

    def _new_lines(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            raw = fh.read()
        lines = []
        for line in raw.decode("utf-8", "replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line being written: read again on the next poll
            if isinstance(item, dict):
                lines.append(item)
        return lines

    def wait_code(self, *, phone_hint: tuple[str, str] | None, timeout: float) -> tuple[str, str]:
        """(code, masked destination) of the next SMS to the phone (country code, last 4)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self._new_lines()
            for index in range(self.seen, len(lines)):
                item = lines[index]
                to = str(item.get("to", ""))
                if phone_hint and not (to.startswith("+" + phone_hint[0]) and to.endswith(phone_hint[1])):
                    continue
                match = _CODE.search(str(item.get("body", "")))
                if match:
                    self.seen = index + 1
                    return match.group(1), masked_number(to)
            if time.monotonic() >= deadline:
                whom = f"+{phone_hint[0]} … {phone_hint[1]}" if phone_hint else "the cardholder"
                raise Unexpected(
                    f"No SMS to {whom} appeared in {self.path} within {timeout:.0f} s. Is the server running with "
                    f"SMS_BACKEND=file and SMS_FILE_PATH={self.path} (and a Celery worker, if it has a broker)?"
                )
            time.sleep(0.2)


def masked_number(e164: str) -> str:
    return f"{e164[:3]} ••• •••• {e164[-4:]}" if len(e164) > 7 else "•••"


def phone_hint(text: str) -> tuple[str, str] | None:
    match = _MASKED_PHONE.search(text or "")
    return (match.group(1), match.group(2)) if match else None


# ---------------------------------------------------------------- the challenge page


class PageParser(HTMLParser):
    """Forms (action, fields) and readable text of the challenge page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self.texts: list[str] = []
        self.classes: list[str] = []
        self.title = ""
        self.message = ""
        self._in = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "method": (attrs.get("method") or "get").lower(),
                               "hidden": {}, "inputs": [], "buttons": []})
        elif tag == "input" and self.forms:
            name = attrs.get("name")
            if name and attrs.get("type") == "hidden":
                self.forms[-1]["hidden"][name] = attrs.get("value") or ""
            elif name:
                self.forms[-1]["inputs"].append(name)
        elif tag == "button" and self.forms and attrs.get("name"):
            self.forms[-1]["buttons"].append((attrs["name"], attrs.get("value") or ""))
        elif tag == "h1":
            self._in = "title"
        elif tag == "p" and "msg" in (attrs.get("class") or "").split():
            self._in = "message"

    def handle_endtag(self, tag):
        if tag in ("h1", "p"):
            self._in = None

    def handle_data(self, data):
        text = data.strip()
        if not text:
            return
        self.texts.append(text)
        if self._in == "title":
            self.title += text
        elif self._in == "message":
            self.message += text

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    def form_with(self, field_name: str) -> dict | None:
        return next((f for f in self.forms if field_name in f["hidden"] or field_name in f["inputs"]), None)


# ---------------------------------------------------------------- the simulation


def exponent_for(currency: str) -> int:
    return 0 if currency in ZERO_EXPONENT_CURRENCIES else 2


def currency_numeric(value: str) -> str:
    value = value.strip().upper()
    if re.fullmatch(r"\d{3}", value):
        return value
    from apps.core.money import CURRENCIES

    for numeric, (alpha, _symbol) in CURRENCIES.items():
        if alpha == value:
            return numeric
    raise CommandError(f"--currency: {value!r} is neither an ISO 4217 numeric code nor a known alphabetic one.")


def minor_units(amount: str, exponent: int) -> str:
    """`1500` is taken as minor units (as the AReq carries it); `15.00` as major units."""
    amount = amount.strip()
    if re.fullmatch(r"\d{1,48}", amount):
        return str(int(amount))
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise CommandError(f"--amount: {amount!r} is not an amount.") from None
    minor = value.scaleb(exponent)
    if value < 0 or minor != minor.to_integral_value():
        raise CommandError(f"--amount: {amount} has more decimals than the currency's exponent {exponent}.")
    return str(int(minor))


class Simulation:
    def __init__(self, command: BaseCommand, options: dict):
        self.cmd = command
        self.o = options
        self.pan: str = options["pan"]
        self.base_url = options["base_url"].rstrip("/")
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "simulate_3ds/1.0 (issuer_portal)"
        self.timeout = options["http_timeout"]
        self.step_no = 0

    # -------------------------------------------------- printing (never the PAN)

    def _safe(self, text: str) -> str:
        return text.replace(self.pan, mask_pan(self.pan)) if self.pan else text

    def say(self, text: str = "") -> None:
        self.cmd.stdout.write(self._safe(text))

    def step(self, title: str) -> None:
        self.step_no += 1
        self.say("")
        self.say(self.cmd.style.MIGRATE_HEADING(f"[{self.step_no}] {title}"))

    def show(self, label: str, message) -> None:
        self.say(f"{label}:")
        self.say(json.dumps(message, indent=2, ensure_ascii=False))

    # -------------------------------------------------- HTTP

    def post_json(self, url: str, message: dict, what: str) -> dict:
        try:
            response = self.http.post(url, json=message, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unexpected(f"{what}: could not reach {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise Unexpected(f"{what}: HTTP {response.status_code} from {url}: {response.text[:300]}")
        try:
            answer = response.json()
        except ValueError:
            raise Unexpected(f"{what}: the answer is not JSON: {response.text[:300]}") from None
        if not isinstance(answer, dict):
            raise Unexpected(f"{what}: the answer is not a JSON object")
        return answer

    def post_form(self, url: str, form: dict, what: str) -> requests.Response:
        try:
            response = self.http.post(url, data=form, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise Unexpected(f"{what}: could not reach {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise Unexpected(f"{what}: HTTP {response.status_code} from {url}")
        if "text/html" not in response.headers.get("Content-Type", ""):
            raise Unexpected(f"{what}: expected an HTML page, got {response.headers.get('Content-Type')!r}")
        return response

    # -------------------------------------------------- checks

    @staticmethod
    def expect_type(message: dict, expected: str, what: str) -> None:
        if message.get("messageType") == "Erro":
            raise Unexpected(
                f"{what}: Erro {message.get('errorCode')} {message.get('errorDescription', '')} "
                f"(errorDetail: {message.get('errorDetail', '')})"
            )
        if message.get("messageType") != expected:
            raise Unexpected(f"{what}: messageType {message.get('messageType')!r} instead of {expected}")

    @staticmethod
    def expect_echo(message: dict, reference: dict, names: tuple[str, ...], what: str) -> None:
        for name in names:
            if str(message.get(name, "")).lower() != str(reference.get(name, "")).lower():
                raise Unexpected(f"{what}: {name} {message.get(name)!r} does not echo {reference.get(name)!r}")

    # -------------------------------------------------- the flow

    def areq(self, endpoints: LocalEndpoints) -> dict:
        o = self.o
        currency = currency_numeric(o["currency"])
        exponent = o["exponent"] if o["exponent"] is not None else exponent_for(currency)
        channel = "01" if o["channel"] == "app" else "02"
        message = {
            "messageType": "AReq",
            "messageVersion": o["message_version"],
            "threeDSServerTransID": str(uuid.uuid4()),
            "dsTransID": str(uuid.uuid4()),
            "threeDSServerRefNumber": "3DS_LOA_SER_SIMULATE_00001",
            "threeDSServerURL": endpoints.base_url + "/3dss",
            "dsReferenceNumber": "DS_LOA_SIMULATE_00001",
            "dsURL": endpoints.ds_url,
            "deviceChannel": channel,
            "messageCategory": "01",
            "acctNumber": self.pan,
            "cardExpiryDate": o["card_expiry"],
            "threeDSRequestorID": "simulate-requestor",
            "threeDSRequestorName": o["merchant_name"][:40],
            "threeDSRequestorURL": "https://merchant.example",
            "threeDSRequestorAuthenticationInd": "01",
            "threeDSRequestorChallengeInd": "04" if o["challenge"] else o["challenge_ind"],
            "merchantName": o["merchant_name"][:40],
            "acquirerBIN": "400551",
            "acquirerMerchantID": o["merchant_id"],
            "mcc": "5942",
            "merchantCountryCode": "392",
            "purchaseAmount": minor_units(o["amount"], exponent),
            "purchaseCurrency": currency,
            "purchaseExponent": str(exponent),
            "purchaseDate": datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"),
            "transType": "01",
        }
        if channel == "02":
            message.update(
                threeDSCompInd="Y",
                notificationURL=endpoints.notification_url,
                browserAcceptHeader="text/html,application/xhtml+xml",
                browserUserAgent="Mozilla/5.0 (simulate_3ds)",
                browserLanguage=o["browser_language"],
                browserIP="192.0.2.10",
                browserJavaEnabled=False,
                browserColorDepth="24",
                browserScreenHeight="1080",
                browserScreenWidth="1920",
                browserTZ="-540",
            )
            if o["message_version"] == "2.2.0":
                message["browserJavascriptEnabled"] = True
        else:
            message.update(
                sdkAppID=str(uuid.uuid4()),
                sdkTransID=str(uuid.uuid4()),
                sdkReferenceNumber="SDK_SIMULATE_0001",
                sdkMaxTimeout="05",
                sdkEphemPubKey={"kty": "EC", "crv": "P-256", "x": "simulate", "y": "simulate"},
                deviceRenderOptions={"sdkInterface": "03", "sdkUiType": ["01", "02", "03", "04", "05"]},
            )
            if o["message_version"] == "2.2.0":
                message["threeDSRequestorAppURL"] = "https://merchant.example/app"
        return message

    def run(self) -> int:
        o = self.o
        sms = SmsFile(o["sms_file"]) if not o["prompt_code"] else None
        with LocalEndpoints(o["listen_host"], o["listen_port"], o["callback_base_url"]) as endpoints:
            self.say(f"ACS under test:  {self.base_url}")
            self.say(f"DS (dsURL):      {endpoints.ds_url}")
            if o["channel"] == "browser":
                self.say(f"Merchant (notificationURL): {endpoints.notification_url}")
            self.say(f"Card:            {mask_pan(self.pan)}   channel: {o['channel']}")

            message = self.areq(endpoints)
            self.step(f"DS → ACS: AReq  POST {self.base_url}/3ds/v2/areq")
            self.show("AReq", {**message, "acctNumber": mask_pan(self.pan)})
            ares = self.post_json(f"{self.base_url}/3ds/v2/areq", message, "AReq")
            self.step("ACS → DS: ARes")
            self.show("ARes", ares)
            self.check_ares(message, ares)

            status = ares["transStatus"]
            final = None
            if status == "C":
                if o["channel"] == "app":
                    final = self.app_challenge(message, ares, sms)
                else:
                    final = self.browser_challenge(message, ares, sms, endpoints)
                rreq = self.wait_rreq(endpoints, ares, final)
                status = final["transStatus"]
                authentication_value = rreq.get("authenticationValue")
            else:
                self.say("")
                self.say(f"No challenge: the ARes is the result ({status}"
                         f"{'/' + ares['transStatusReason'] if ares.get('transStatusReason') else ''}); no RReq follows.")
                authentication_value = ares.get("authenticationValue")
            if endpoints.unexpected:
                raise Unexpected("The local endpoints received " + "; ".join(endpoints.unexpected))

            if o["api_key"]:
                self.stripe_import(ares["acsTransID"], status, authentication_value)

        return self.conclude(ares, status, final)

    def check_ares(self, areq: dict, ares: dict) -> None:
        self.expect_type(ares, "ARes", "ARes")
        self.expect_echo(ares, areq, ("messageVersion", "threeDSServerTransID", "dsTransID"), "ARes")
        if not _UUID.match(str(ares.get("acsTransID", ""))):
            raise Unexpected("ARes: acsTransID is not a UUID")
        status = ares.get("transStatus")
        if status not in ("Y", "A", "N", "U", "R", "C"):
            raise Unexpected(f"ARes: transStatus {status!r}")
        if status in ("Y", "A") and (not ares.get("eci") or len(ares.get("authenticationValue", "")) != 28):
            raise Unexpected("ARes: a Y/A result without eci or a 28-character authenticationValue")
        if status in ("N", "U", "R") and not ares.get("transStatusReason"):
            raise Unexpected("ARes: an N/U/R result without transStatusReason")
        if status == "C":
            if areq["deviceChannel"] == "02" and not ares.get("acsURL"):
                raise Unexpected("ARes: a browser challenge without acsURL")
            if areq["deviceChannel"] == "01" and str(ares.get("sdkTransID", "")).lower() != areq["sdkTransID"]:
                raise Unexpected("ARes: sdkTransID not echoed")

    # -------------------------------------------------- reading the code

    def read_code(self, sms: SmsFile | None, hint: tuple[str, str] | None) -> str:
        if sms is None:
            code = input("Code received by SMS: ").strip()
            self.say(f"Code typed: {code}")
            return code
        code, to = sms.wait_code(phone_hint=hint, timeout=self.o["sms_timeout"])
        self.step(f"Cardholder reads the SMS  ({sms.path})")
        self.say(f"SMS to {to}: code {code}")
        return code

    @staticmethod
    def wrong_code(code: str) -> str:
        return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))

    # -------------------------------------------------- app channel

    def app_challenge(self, areq: dict, ares: dict, sms: SmsFile | None) -> dict:
        url = f"{self.base_url}/3ds/v2/creq"
        counter = 0

        def send(note: str, **fields) -> dict:
            nonlocal counter
            creq = {
                "messageType": "CReq",
                "messageVersion": areq["messageVersion"],
                "threeDSServerTransID": areq["threeDSServerTransID"],
                "acsTransID": ares["acsTransID"],
                "sdkTransID": areq["sdkTransID"],
                "sdkCounterStoA": f"{counter:03d}",
                **fields,
            }
            self.step(f"3DS SDK → ACS: CReq #{counter} {note}  POST {url}")
            self.show("CReq", creq)
            cres = self.post_json(url, creq, f"CReq #{counter}")
            self.step(f"ACS → 3DS SDK: CRes #{counter}")
            self.show("CRes", cres)
            self.expect_type(cres, "CRes", f"CRes #{counter}")
            self.expect_echo(cres, creq, ("threeDSServerTransID", "acsTransID", "sdkTransID", "messageVersion"), f"CRes #{counter}")
            if cres.get("acsCounterAtoS") != f"{counter:03d}":
                raise Unexpected(f"CRes #{counter}: acsCounterAtoS {cres.get('acsCounterAtoS')!r} instead of {counter:03d}")
            counter += 1
            return cres

        cres = send("(first: start the challenge)")
        if cres.get("challengeCompletionInd") == "Y":
            return self.check_final(cres)
        if cres.get("acsUiType") != "01":
            raise Unexpected(f"CRes: acsUiType {cres.get('acsUiType')!r}; this simulation answers OTP challenges (01)")
        hint = phone_hint(cres.get("challengeInfoText", ""))
        if self.o["cancel"]:
            return self.check_final(send("(cardholder cancels)", challengeCancel="01"))
        code = self.read_code(sms, hint)
        for _ in range(self.o["wrong_codes"]):
            cres = send("(a wrong code)", challengeDataEntry=self.wrong_code(code))
            if cres.get("challengeCompletionInd") == "Y":
                return self.check_final(cres)
        cres = send("(the code from the SMS)", challengeDataEntry=code)
        if cres.get("challengeCompletionInd") != "Y":
            raise Unexpected(f"CRes: the challenge did not end after the code: {cres.get('challengeInfoText', '')}")
        return self.check_final(cres)

    # -------------------------------------------------- browser channel

    def browser_challenge(self, areq: dict, ares: dict, sms: SmsFile | None, endpoints: LocalEndpoints) -> dict:
        acs_url = ares["acsURL"]
        creq = {
            "threeDSServerTransID": areq["threeDSServerTransID"],
            "acsTransID": ares["acsTransID"],
            "challengeWindowSize": self.o["window_size"],
            "messageVersion": areq["messageVersion"],
            "messageType": "CReq",
        }
        session_data = base64.urlsafe_b64encode(json.dumps({"order": secrets.token_hex(4)}).encode()).rstrip(b"=").decode()
        self.step(f"Merchant page → ACS: form post of the CReq  POST {acs_url}")
        self.show("CReq (the form's creq field, base64url-decoded)", creq)
        self.say(f"threeDSSessionData: {session_data}")
        page = self.page(self.post_form(acs_url, {"creq": b64url_encode(creq), "threeDSSessionData": session_data}, "CReq post"))

        def submit(note: str, action: str, **fields) -> PageParser:
            form = page.form_with("pageToken")
            if form is None:
                raise Unexpected("The challenge page has no form to post back")
            target = urljoin(acs_url, form["action"])
            self.step(f"Cardholder → ACS: {note}  POST {target}")
            shown = {**form["hidden"], "action": action, **fields}
            shown["pageToken"] = "…"  # a per-render secret; nothing to learn from it
            self.say(f"form: {json.dumps(shown, ensure_ascii=False)}")
            return self.page(self.post_form(target, {**form["hidden"], "action": action, **fields}, note))

        if page.form_with("cres") is None:
            if page.form_with("challengeDataEntry") is None:
                raise Unexpected(f"The challenge page has no code field: {page.text[:300]}")
            hint = phone_hint(page.text)
            if self.o["cancel"]:
                page = submit("cancel", "cancel")
            else:
                code = self.read_code(sms, hint)
                for _ in range(self.o["wrong_codes"]):
                    page = submit("a wrong code", "submit", challengeDataEntry=self.wrong_code(code))
                    if page.form_with("cres") is not None:
                        break
                else:
                    page = submit("the code from the SMS", "submit", challengeDataEntry=code)
        final_form = page.form_with("cres")
        if final_form is None:
            raise Unexpected(f"The challenge did not end: {page.message or page.text[:300]}")

        # What the page's script does in a browser: post the final CRes to notificationURL.
        target = urljoin(acs_url, final_form["action"])
        if target != areq["notificationURL"]:
            raise Unexpected(f"The final page posts to {target}, not to the AReq's notificationURL")
        self.step(f"Browser → merchant: final CRes form post  POST {target}")
        try:
            response = self.http.post(target, data=final_form["hidden"], timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unexpected(f"Posting the final CRes: {exc}") from None
        if response.status_code != 200:
            raise Unexpected(f"notificationURL answered HTTP {response.status_code}")
        try:
            received = endpoints.cres_posts.get(timeout=5)
        except queue.Empty:
            raise Unexpected("The final CRes did not reach notificationURL") from None
        form = received.form()
        try:
            cres = b64url_decode(form.get("cres", ""))
        except ValueError:
            raise Unexpected("The final cres is not base64url JSON") from None
        self.step("Merchant (notificationURL) received the final CRes")
        self.show("CRes", cres)
        if form.get("threeDSSessionData") != session_data:
            raise Unexpected("threeDSSessionData did not come back untouched")
        self.say("threeDSSessionData came back untouched.")
        self.expect_type(cres, "CRes", "final CRes")
        self.expect_echo(cres, creq, ("threeDSServerTransID", "acsTransID", "messageVersion"), "final CRes")
        return self.check_final(cres)

    def page(self, response: requests.Response) -> PageParser:
        page = PageParser(response.text)
        summary = page.title or "(no title)"
        self.say(f"page: {summary}")
        if page.form_with("cres") is None:
            details = [t for t in page.texts if t not in (page.title,)][:8]
            self.say("      " + " | ".join(details))
        if page.message:
            self.say(f"message: {page.message}")
        if self.pan in response.text:  # never expected; the output stays masked anyway
            raise Unexpected("The challenge page contains the PAN")
        return page

    # -------------------------------------------------- the end

    @staticmethod
    def check_final(cres: dict) -> dict:
        if cres.get("challengeCompletionInd") != "Y":
            raise Unexpected("final CRes: challengeCompletionInd is not Y")
        if cres.get("transStatus") not in ("Y", "A", "N", "U", "R"):
            raise Unexpected(f"final CRes: transStatus {cres.get('transStatus')!r}")
        return cres

    def wait_rreq(self, endpoints: LocalEndpoints, ares: dict, final: dict) -> dict:
        timeout = self.o["rreq_timeout"]
        deadline = time.monotonic() + timeout
        while True:
            try:
                received = endpoints.rreqs.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise Unexpected(f"No RReq reached dsURL within {timeout:.0f} s (is a Celery worker running?)") from None
            rreq = received.json()
            if str(rreq.get("acsTransID", "")).lower() == ares["acsTransID"].lower():
                break
            self.say(f"(an RReq for another transaction, {rreq.get('acsTransID')}: ignored)")
        self.step("ACS → DS: RReq received at dsURL")
        self.show("RReq", rreq)
        self.say("DS → ACS: RRes")
        self.say(json.dumps(rres_for(rreq), ensure_ascii=False))
        self.expect_type(rreq, "RReq", "RReq")
        self.expect_echo(rreq, ares, ("threeDSServerTransID", "dsTransID", "acsTransID", "messageVersion"), "RReq")
        if rreq.get("transStatus") != final.get("transStatus"):
            raise Unexpected(f"RReq transStatus {rreq.get('transStatus')!r} differs from the final CRes's {final.get('transStatus')!r}")
        if rreq["transStatus"] in ("Y", "A"):
            if not rreq.get("eci") or len(rreq.get("authenticationValue") or "") != 28:
                raise Unexpected("RReq: a Y/A result without eci or a 28-character authenticationValue")
        elif not rreq.get("transStatusReason"):
            raise Unexpected("RReq: an N/U/R result without transStatusReason")
        return rreq

    def stripe_import(self, acs_trans_id: str, status: str, authentication_value: str | None) -> None:
        url = f"{self.base_url}/api/v1/transactions/{acs_trans_id}/stripe-import"
        self.step(f"Merchant → issuer API: Stripe import payload  GET {url}")
        try:
            response = self.http.get(url, headers={"Authorization": f"Bearer {self.o['api_key']}"}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unexpected(f"Stripe import: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise Unexpected(f"Stripe import: HTTP {response.status_code}, not JSON") from None
        self.say(f"HTTP {response.status_code}")
        self.say(json.dumps(body, indent=2, ensure_ascii=False))
        if status in ("Y", "A"):
            if response.status_code != 200:
                raise Unexpected(f"Stripe import: HTTP {response.status_code} for a {status} result")
            three_ds = body.get("payment_method_options", {}).get("card", {}).get("three_d_secure", {})
            if three_ds.get("cryptogram") != authentication_value:
                raise Unexpected("Stripe import: the cryptogram is not the authenticationValue of the result")
        elif response.status_code != 409:
            raise Unexpected(f"Stripe import: HTTP {response.status_code} for a {status} result (409 expected)")

    def conclude(self, ares: dict, status: str, final: dict | None) -> int:
        expect = self.o["expect"] or ("N" if self.o["cancel"] else "success")
        ok = expect == "any" or (status in ("Y", "A") if expect == "success" else status == expect)
        self.say("")
        how = "after a challenge" if final is not None else "in the ARes, no challenge"
        line = f"Result: transStatus {status} ({how}), acsTransID {ares['acsTransID']}"
        if ok:
            self.say(self.cmd.style.SUCCESS(line))
            return 0
        self.say(self.cmd.style.ERROR(f"{line}; expected {expect}"))
        return EXIT_OTHER_RESULT


class Command(BaseCommand):
    help = (
        "Drive one whole 3-D Secure authentication against a running server, playing the DS and the merchant: "
        "AReq, challenge with the code read from the SMS file, RReq, final CRes, Stripe import payload."
    )
    # An HTTP client of the server: it needs neither the database nor the system checks.
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=settings.PUBLIC_BASE_URL, help="The running server (default PUBLIC_BASE_URL).")
        parser.add_argument("--pan", default=None, help="Card number (default: the demo Visa card of seed_demo). Never printed.")
        parser.add_argument("--channel", choices=["app", "browser"], default="app")
        parser.add_argument("--amount", default="1500", help="purchaseAmount: minor units (1500), or major units with a point (15.00).")
        parser.add_argument("--currency", default="392", help="ISO 4217 numeric (392) or alphabetic (JPY). Default 392.")
        parser.add_argument("--exponent", type=int, choices=range(0, 10), default=None, help="purchaseExponent (default: the currency's).")
        parser.add_argument("--challenge", action="store_true", help="threeDSRequestorChallengeInd 04: challenge mandated.")
        parser.add_argument("--challenge-ind", default="01", help="threeDSRequestorChallengeInd without --challenge (default 01).")
        parser.add_argument("--message-version", choices=["2.1.0", "2.2.0"], default="2.2.0")
        parser.add_argument("--merchant-name", default="Tokyo Books")
        parser.add_argument("--merchant-id", default="simulate-merchant-001", help="acquirerMerchantID.")
        parser.add_argument("--card-expiry", default="3012", help="cardExpiryDate YYMM.")
        parser.add_argument("--browser-language", default="en-US")
        parser.add_argument("--window-size", choices=["01", "02", "03", "04", "05"], default="05", help="challengeWindowSize (browser).")
        parser.add_argument("--sms-file", default=settings.SMS_FILE_PATH, help="JSON lines of SMS_BACKEND=file (default SMS_FILE_PATH).")
        parser.add_argument("--sms-timeout", type=float, default=30.0, help="Seconds to wait for the SMS.")
        parser.add_argument("--prompt-code", action="store_true", help="Ask for the code on stdin instead of reading the SMS file.")
        parser.add_argument("--wrong-codes", type=int, default=0, help="Enter this many wrong codes before the right one.")
        parser.add_argument("--cancel", action="store_true", help="The cardholder cancels the challenge (expects N).")
        parser.add_argument("--rreq-timeout", type=float, default=30.0, help="Seconds to wait for the RReq at dsURL.")
        parser.add_argument("--http-timeout", type=float, default=15.0)
        parser.add_argument("--api-key", default="", help="Issuer API key: fetch the Stripe import payload at the end.")
        parser.add_argument("--expect", choices=["success", "Y", "A", "N", "U", "R", "any"], default=None,
                            help="The result that exits 0 (default: success = Y or A; N with --cancel).")
        parser.add_argument("--listen-host", default="127.0.0.1", help="Where the local dsURL/notificationURL server listens.")
        parser.add_argument("--listen-port", type=int, default=0, help="Its port (default: any free one).")
        parser.add_argument("--callback-base-url", default="",
                            help="The base URL the server must use to reach the local endpoints, if not http://HOST:PORT.")

    def handle(self, *args, **options):
        options["pan"] = options["pan"] or demo_pan()
        pan = options["pan"]
        if not re.fullmatch(r"[0-9]{13,19}", pan):
            raise CommandError("--pan: 13 to 19 digits.")
        if options["wrong_codes"] < 0:
            raise CommandError("--wrong-codes: 0 or more.")
        simulation = Simulation(self, options)
        try:
            code = simulation.run()
        except Unexpected as exc:
            raise CommandError(simulation._safe(f"Unexpected: {exc}"), returncode=EXIT_UNEXPECTED) from None
        if code:
            raise CommandError("The authentication did not end as expected.", returncode=code)
