"""`manage.py simulate_3ds`: one whole 3-D Secure authentication against a RUNNING server (SPEC §5.7).

The command plays everyone around the ACS:

- the Directory Server: it sends the AReq, and a small local HTTP server of its own receives the
  RReq at the AReq's dsURL and answers an RRes with resultsStatus 01;
- the 3DS Server / merchant: for the browser channel it posts the CReq form to acsURL like a
  merchant page, and the same local server receives the final CRes at the notificationURL; for
  the app channel it is the 3DS SDK: its own ephemeral key in the AReq, acsSignedContent
  verified (against --trust-root, else its own chain's root), JWE CReqs and CRes;
- the cardholder: it reads the code from the SMS file of the `file` SMS backend (the
  simulation of looking at the phone, so the code is printed) and types it in; an out-of-band
  challenge it leaves to the issuer app (the demo's is /demo/app/) and waits for its answer.

Without flags it finds the demo: the server at PUBLIC_BASE_URL (which follows PORT), the SMS in
SMS_FILE_PATH (where `make run` writes them).

At the end, with --api-key, it fetches the Stripe import payload of the transaction.

Every step is printed. The PAN never is: the AReq shows acctNumber masked to its last 4 digits.
The parties are played by `apps.threeds.simulator`, the package the tests' end-to-end harness
uses too, over real HTTP (requests), so the command exercises the server exactly as outside
systems do; this module parses the options and prints the report.

Exit status: 0 when the authentication ended as expected (Y or A by default; N with --cancel;
see --expect), 1 on any unexpected answer (HTTP error, Erro, a missing or wrong element, no RReq,
no SMS), 2 when it ended with another result than expected.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.threeds import app_crypto
from apps.threeds.emv import REASON_DESCRIPTIONS, SUPPORTED_VERSIONS, VERSION_RULES
from apps.threeds.simulator import messages
from apps.threeds.simulator.client import Acs, Authentication, check_final, expect_echo, expect_type
from apps.threeds.simulator.endpoints import Endpoints
from apps.threeds.simulator.errors import Unexpected, Unreachable
from apps.threeds.simulator.messages import b64url_encode, mask_pan, rres_for, wrong_code
from apps.threeds.simulator.page import ChallengePage
from apps.threeds.simulator.phone import SmsFile, phone_hint
from apps.threeds.simulator.transport import HttpTransport

EXIT_UNEXPECTED = 1
EXIT_OTHER_RESULT = 2

FALLBACK_DEMO_PAN = "4111111111111111"
ZERO_EXPONENT_CURRENCIES = {"392", "410", "704", "152", "348"}  # JPY, KRW, VND, CLP, HUF (ISO 4217 minor unit 0)
ACS_UI_OTP, ACS_UI_OOB = "01", "04"
OOB_POLL_SECONDS = 2.0

# The challenge's fallback reasons (the issuer API's transaction detail), in words.
FALLBACK_WORDS = {
    "sms_card_hourly_limit": "the OTP policy's limit of codes per card per hour was reached (max_sends_per_card_hour)",
    "sms_card_daily_limit": "the OTP policy's limit of codes per card per day was reached (max_sends_per_card_day)",
    "sms_phone_daily_limit": "the OTP policy's limit of codes per phone number per day was reached (max_sends_per_phone_day)",
    "sms_country_not_allowed": "the phone's country is not in the OTP policy's allowed countries",
    "cancelled_in_app": "the cardholder declined in the issuer app",
    "oob_timeout": "the issuer app did not answer in time",
    "push_failed": "the push to the issuer app could not be delivered",
    "push_rate_limited": "too many pushes to the device in a minute",
    "assertion_failed": "the app's WebAuthn assertion failed",
}


def demo_pan() -> str:
    """The first active Visa card seed_demo enrolls (its cardholder has a verified JP phone).
    Named here, not read from apps.demo: threeds sits below the demo app in the import graph;
    tests/test_commands.py checks that seed_demo still enrolls it."""
    return FALLBACK_DEMO_PAN


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
    """One authentication, narrated: the simulator package plays the parties, this prints."""

    def __init__(self, command: BaseCommand, options: dict):
        self.cmd = command
        self.o = options
        self.pan: str = options["pan"]
        self.base_url = options["base_url"].rstrip("/")
        self.step_no = 0
        self.last_message = ""  # what the last challenge page or CRes said to the cardholder
        self.rreq: dict | None = None
        self.why = ""

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

    def narrate(self, event: str, **d) -> None:
        """What the simulator's client is about to send or has received."""
        if event == "areq":
            self.step(f"DS → ACS: AReq  POST {d['url']}")
            self.show("AReq", {**d["message"], "acctNumber": mask_pan(self.pan)})
        elif event == "ares":
            self.step("ACS → DS: ARes")
            self.show("ARes", d["message"])
        elif event == "creq":
            self.step(f"3DS SDK → ACS: CReq #{d['counter']} {d['note']}  POST {d['url']}")
            self.show("CReq", d["message"])
        elif event == "cres":
            self.step(f"ACS → 3DS SDK: CRes #{d['counter']}")
            self.show("CRes", d["message"])
        elif event == "creq_form":
            self.step(f"Merchant page → ACS: form post of the CReq  POST {d['url']}")
            self.show("CReq (the form's creq field, base64url-decoded)", d["message"])
            self.say(f"threeDSSessionData: {d['session_data']}")
        elif event == "page_form":
            self.step(f"Cardholder → ACS: {d['note']}  POST {d['url']}")
            shown = {**d["form"], "pageToken": "…"}  # a per-render secret; nothing to learn from it
            self.say(f"form: {json.dumps(shown, ensure_ascii=False)}")
        elif event == "page":
            self.page(d["page"])
        elif event == "final_form":
            self.step(f"Browser → merchant: final CRes form post  POST {d['url']}")

    def page(self, page: ChallengePage) -> None:
        if page.status_code != 200:
            raise Unexpected(f"HTTP {page.status_code} from {page.response.url}")
        self.say(f"page: {page.title or '(no title)'}")
        if not page.is_final:
            details = [t for t in page.texts if t not in (page.title,)][:8]
            self.say("      " + " | ".join(details))
        if page.message:
            self.say(f"message: {page.message}")
            self.last_message = page.message
        if self.pan in page.response.text:  # never expected; the output stays masked anyway
            raise Unexpected("The challenge page contains the PAN")

    # -------------------------------------------------- the flow

    def areq(self, endpoints: Endpoints) -> dict:
        o = self.o
        currency = currency_numeric(o["currency"])
        exponent = o["exponent"] if o["exponent"] is not None else exponent_for(currency)
        channel = messages.APP if o["channel"] == "app" else messages.BROWSER
        v22 = VERSION_RULES[o["message_version"]].javascript_gated_browser  # 2.2.0 and later
        common = dict(
            threeDSServerRefNumber="3DS_LOA_SER_SIMULATE_00001",
            threeDSServerURL=endpoints.url + "/3dss",
            dsReferenceNumber="DS_LOA_SIMULATE_00001",
            dsURL=endpoints.ds_url,
            cardExpiryDate=o["card_expiry"],
            threeDSRequestorID="simulate-requestor",
            threeDSRequestorName=o["merchant_name"][:40],
            threeDSRequestorChallengeInd="04" if o["challenge"] else o["challenge_ind"],
            merchantName=o["merchant_name"][:40],
            acquirerMerchantID=o["merchant_id"],
            purchaseAmount=minor_units(o["amount"], exponent),
            purchaseCurrency=currency,
            purchaseExponent=str(exponent),
            transType="01",
        )
        if channel == messages.BROWSER:
            per_channel = dict(
                notificationURL=endpoints.notification_url,
                browserAcceptHeader="text/html,application/xhtml+xml",
                browserUserAgent="Mozilla/5.0 (simulate_3ds)",
                browserLanguage=o["browser_language"],
                browserJavascriptEnabled=True if v22 else None,  # a 2.2.0 element
            )
        else:
            per_channel = dict(
                sdkReferenceNumber="SDK_SIMULATE_0001",
                sdkEphemPubKey=app_crypto.ephem_pub_key_jwk(self.sdk_ephem_key),
                threeDSRequestorAppURL="https://merchant.example/app" if v22 else None,  # a 2.2.0 element
            )
        return messages.areq(pan=self.pan, channel=channel, category="01", version=o["message_version"],
                             **common, **per_channel)

    @staticmethod
    def trust_roots(path: str) -> list:
        from cryptography import x509

        try:
            with open(path, "rb") as f:
                return x509.load_pem_x509_certificates(f.read())
        except (OSError, ValueError) as exc:
            raise CommandError(f"--trust-root {path}: {exc}")

    def run(self) -> int:
        o = self.o
        sms = SmsFile(o["sms_file"], from_end=True) if not o["prompt_code"] else None
        with Endpoints(o["listen_host"], o["listen_port"], public_base_url=o["callback_base_url"]) as endpoints:
            transport = HttpTransport(self.base_url, timeout=o["http_timeout"], user_agent="simulate_3ds/1.0 (issuer_portal)")
            acs = self.acs = Acs(transport, endpoints, narrator=self.narrate)
            if o["trust_root"]:
                acs.trust_anchors = self.trust_roots(o["trust_root"])
            self.say(f"ACS under test:  {self.base_url}")
            self.say(f"DS (dsURL):      {endpoints.ds_url}")
            if o["channel"] == "browser":
                self.say(f"Merchant (notificationURL): {endpoints.notification_url}")
            self.say(f"Card:            {mask_pan(self.pan)}   channel: {o['channel']}")

            # The 3DS SDK's ephemeral key pair (app channel): public half in the AReq, private
            # half to derive the session key from the ARes's acsSignedContent.
            self.sdk_ephem_key = app_crypto.acs_ephem_key_new()
            auth = acs.send_areq(self.areq(endpoints), sdk_ephem_key=self.sdk_ephem_key)
            ares = auth.ares
            status = ares["transStatus"]
            final = None
            if status == "C":
                final = self.app_challenge(auth, sms) if o["channel"] == "app" else self.browser_challenge(auth, sms)
                rreq = self.wait_rreq(endpoints, ares, final)
                status = final["transStatus"]
                authentication_value = rreq.get("authenticationValue")
            else:
                self.say("")
                self.say(f"No challenge: the ARes is the result ({status}"
                         f"{'/' + ares['transStatusReason'] if ares.get('transStatusReason') else ''}); no RReq follows.")
                authentication_value = ares.get("authenticationValue")
            if endpoints.violations:
                raise Unexpected("The local endpoints received " + "; ".join(endpoints.violations))

            if o["api_key"]:
                self.stripe_import(transport, ares["acsTransID"], status, authentication_value)

        return self.conclude(ares, status, final)

    # -------------------------------------------------- reading the code

    def read_code(self, sms: SmsFile | None, hint: tuple[str, str] | None) -> str:
        if sms is None:
            code = input("Code received by SMS: ").strip()
            self.say(f"Code typed: {code}")
            return code
        code, to = sms.next_code(phone_hint=hint, timeout=self.o["sms_timeout"])
        self.step(f"Cardholder reads the SMS  ({sms.path})")
        self.say(f"SMS to {to}: code {code}")
        return code

    # -------------------------------------------------- app channel

    def app_challenge(self, auth: Authentication, sms: SmsFile | None) -> dict:
        app = auth.app()

        def send(note: str, **fields) -> dict:
            number = app.counter
            cres = app.send(note, **fields)
            expect_type(cres, "CRes", f"CRes #{number}")
            return cres

        cres = send("(first: start the challenge)")
        if cres.get("challengeCompletionInd") == "Y":
            return check_final(cres)
        if cres.get("acsUiType") == ACS_UI_OOB:
            if self.o["cancel"]:
                return check_final(send("(cardholder cancels)", challengeCancel="01"))
            cres = self.wait_oob(lambda: send("(has the app answered?)", oobContinue=True),
                                 lambda c: c.get("challengeCompletionInd") == "Y" or c.get("acsUiType") != ACS_UI_OOB)
            if cres.get("challengeCompletionInd") == "Y":
                return check_final(cres)
        if cres.get("acsUiType") != ACS_UI_OTP:
            raise Unexpected(f"CRes: acsUiType {cres.get('acsUiType')!r}; this simulation answers OTP (01) and out-of-band (04) challenges")
        hint = phone_hint(cres.get("challengeInfoText", ""))
        if self.o["cancel"]:
            return check_final(send("(cardholder cancels)", challengeCancel="01"))
        code = self.read_code(sms, hint)
        for _ in range(self.o["wrong_codes"]):
            cres = send("(a wrong code)", challengeDataEntry=wrong_code(code))
            if cres.get("challengeCompletionInd") == "Y":
                return check_final(cres)
        cres = send("(the code from the SMS)", challengeDataEntry=code)
        if cres.get("challengeCompletionInd") != "Y":
            raise Unexpected(f"CRes: the challenge did not end after the code: {cres.get('challengeInfoText', '')}")
        return check_final(cres)

    # -------------------------------------------------- browser channel

    def browser_challenge(self, auth: Authentication, sms: SmsFile | None) -> dict:
        session_data = b64url_encode({"order": secrets.token_hex(4)})
        browser = auth.browser(window=self.o["window_size"], session_data=session_data)
        page = browser.start()
        if not page.is_final and page.form_with("challengeDataEntry") is None and page.form_with("pageToken") is not None \
                and not self.o["cancel"]:
            # Out of band: the cardholder answers in the issuer app; the page moves on after.
            page = self.wait_oob(lambda: browser.act("continue", "has the app answered?"),
                                 lambda p: p.is_final or p.form_with("challengeDataEntry") is not None)
        if not page.is_final:
            if page.form_with("challengeDataEntry") is None:
                raise Unexpected(f"The challenge page has no code field: {page.text[:300]}")
            hint = phone_hint(page.text)
            if self.o["cancel"]:
                page = browser.cancel("cancel")
            else:
                code = self.read_code(sms, hint)
                for _ in range(self.o["wrong_codes"]):
                    page = browser.submit(wrong_code(code), "a wrong code")
                    if page.is_final:
                        break
                else:
                    page = browser.submit(code, "the code from the SMS")
        if not page.is_final:
            raise Unexpected(f"The challenge did not end: {page.message or page.text[:300]}")

        received = browser.post_final()
        cres = received.cres
        self.step("Merchant (notificationURL) received the final CRes")
        self.show("CRes", cres)
        if received.form.get("threeDSSessionData") != session_data:
            raise Unexpected("threeDSSessionData did not come back untouched")
        self.say("threeDSSessionData came back untouched.")
        expect_type(cres, "CRes", "final CRes")
        expect_echo(cres, browser.creq(), ("threeDSServerTransID", "acsTransID", "messageVersion"), "final CRes")
        return check_final(cres)

    # -------------------------------------------------- out of band

    def wait_oob(self, ask, answered):
        """Ask every OOB_POLL_SECONDS until the issuer app answered (or the ACS fell back to SMS)."""
        self.step("Cardholder approves in the issuer app")
        app_url = self.base_url.replace("://127.0.0.1", "://localhost") + "/demo/app/"
        self.say(f"Waiting for the issuer app: approve (or decline) the request there, e.g. the demo app at {app_url}")
        deadline = time.monotonic() + self.o["oob_timeout"]
        narrate, self.acs.narrate = self.acs.narrate, lambda *a, **k: None  # the waiting polls are not steps
        try:
            while True:
                time.sleep(OOB_POLL_SECONDS)
                reply = ask()
                if answered(reply):
                    break
                if time.monotonic() > deadline:
                    raise Unexpected(f"The issuer app did not answer within {self.o['oob_timeout']:.0f} s "
                                     f"(is a device registered for this cardholder? the demo app: {app_url})")
        finally:
            self.acs.narrate = narrate
        self.step("The issuer app answered")
        if isinstance(reply, dict):
            self.show("CRes", reply)
        else:
            self.page(reply)
        return reply

    def explanation(self, acs_trans_id: str, status: str, reason: str) -> str:
        """Why the result is what it is, in words: the reason's meaning, what the cardholder was
        told, and with --api-key the challenge's fallback reason from the issuer API."""
        parts = [f"{status}/{reason}: {REASON_DESCRIPTIONS.get(reason, 'reason ' + reason)}" if reason else status]
        if self.last_message:
            parts.append(f"the ACS said: {self.last_message}")
        if self.o["api_key"]:
            try:
                response = HttpTransport(self.base_url, timeout=self.o["http_timeout"]).get(
                    f"{self.base_url}/api/v1/transactions/{acs_trans_id}", headers={"Authorization": f"Bearer {self.o['api_key']}"})
                challenge = (response.json() or {}).get("challenge") or {} if response.status_code == 200 else {}
            except (Unexpected, ValueError):
                challenge = {}
            fallback = challenge.get("fallback_reason")
            if fallback:
                parts.append(f"challenge: {FALLBACK_WORDS.get(fallback, fallback)}")
        elif reason == "13":
            parts.append("no way to authenticate the cardholder — no verified phone or device, or an SMS limit was "
                         "reached (--api-key shows which)")
        return "; ".join(parts)

    # -------------------------------------------------- the end

    def wait_rreq(self, endpoints: Endpoints, ares: dict, final: dict) -> dict:
        timeout = self.o["rreq_timeout"]
        try:
            rreq = endpoints.wait_rreq(ares["acsTransID"], timeout=timeout)
        except Unexpected:
            raise Unexpected(f"No RReq reached dsURL within {timeout:.0f} s (is a Celery worker running?)") from None
        self.rreq = rreq
        self.step("ACS → DS: RReq received at dsURL")
        self.show("RReq", rreq)
        self.say("DS → ACS: RRes")
        self.say(json.dumps(rres_for(rreq), ensure_ascii=False))
        expect_type(rreq, "RReq", "RReq")
        expect_echo(rreq, ares, ("threeDSServerTransID", "dsTransID", "acsTransID", "messageVersion"), "RReq")
        if rreq.get("transStatus") != final.get("transStatus"):
            raise Unexpected(f"RReq transStatus {rreq.get('transStatus')!r} differs from the final CRes's {final.get('transStatus')!r}")
        if rreq["transStatus"] in ("Y", "A"):
            if not rreq.get("eci") or len(rreq.get("authenticationValue") or "") != 28:
                raise Unexpected("RReq: a Y/A result without eci or a 28-character authenticationValue")
        elif not rreq.get("transStatusReason"):
            raise Unexpected("RReq: an N/U/R result without transStatusReason")
        return rreq

    def stripe_import(self, transport: HttpTransport, acs_trans_id: str, status: str, authentication_value: str | None) -> None:
        url = f"{self.base_url}/api/v1/transactions/{acs_trans_id}/stripe-import"
        self.step(f"Merchant → issuer API: Stripe import payload  GET {url}")
        try:
            response = transport.get(url, headers={"Authorization": f"Bearer {self.o['api_key']}"})
        except Unexpected as exc:
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
        reason = next((m.get("transStatusReason") for m in (self.rreq, final, ares) if m and m.get("transStatusReason")), "")
        wanted = "Y or A (authenticated)" if expect == "success" else expect
        self.why = f"The authentication ended {self.explanation(ares['acsTransID'], status, reason)} — not {wanted}."
        self.say(self.cmd.style.ERROR(f"{line}"))
        self.say(self.cmd.style.ERROR(self.why))
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
        parser.add_argument("--trust-root", default="", help="PEM root(s) acsSignedContent must chain to (app channel); "
                            "default: its own chain's last certificate (consistency only).")
        parser.add_argument("--amount", default="1500", help="purchaseAmount: minor units (1500), or major units with a point (15.00).")
        parser.add_argument("--currency", default="392", help="ISO 4217 numeric (392) or alphabetic (JPY). Default 392.")
        parser.add_argument("--exponent", type=int, choices=range(0, 10), default=None, help="purchaseExponent (default: the currency's).")
        parser.add_argument("--challenge", action="store_true", help="threeDSRequestorChallengeInd 04: challenge mandated.")
        parser.add_argument("--challenge-ind", default="01", help="threeDSRequestorChallengeInd without --challenge (default 01).")
        parser.add_argument("--message-version", choices=list(SUPPORTED_VERSIONS), default="2.2.0")
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
        parser.add_argument("--oob-timeout", type=float, default=150.0,
                            help="Seconds to wait for the issuer app's answer to an out-of-band challenge.")
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
        except Unreachable as exc:
            raise CommandError(simulation._safe(
                f"Cannot reach the ACS at {simulation.base_url} ({exc}). Is the server running there? `make run` serves "
                "PUBLIC_BASE_URL (http://127.0.0.1:$PORT); set PORT or --base-url to the server's."), returncode=EXIT_UNEXPECTED) from None
        except Unexpected as exc:
            raise CommandError(simulation._safe(f"Unexpected: {exc}"), returncode=EXIT_UNEXPECTED) from None
        if code:
            raise CommandError(simulation._safe(simulation.why), returncode=code)
