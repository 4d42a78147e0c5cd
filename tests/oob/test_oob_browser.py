"""The out-of-band challenge in a real headless Chromium, across origins (issue 5's browser test).

The ACS runs on pytest-django's live server (http://localhost:<port>); the merchant's checkout
(tests/threeds/merchant_site.py) on another site (http://127.0.0.1:<port>) frames the challenge
page and receives the final CRes at its notificationURL; the harness's `Endpoints`
(tests/threeds/harness.py) plays the DS's dsURL and the issuer backend's notification endpoint.
The cardholder's banking app is an HTTP client with a software WebAuthn authenticator
(tests/oob/e2e_helpers.py) that talks to the live server while the page waits.

The test never clicks on the OOB page: the page's own script polls
`POST /3ds/v2/challenge/status` and moves on when the app has answered. Tasks run in the server's
process (push and SMS to the `file` backends), so this runs without a broker too.

Screenshots go to /tmp/oob-challenge-*.png.
"""

import json
from pathlib import Path

import pytest
import requests

from apps.oob.models import AuthnRequest
from apps.threeds.models import Challenge, Transaction
from tests.conftest import wait_for
from tests.oob.e2e_helpers import HttpApp, make_oob_bank, register_app_over_http
from tests.support.fixtures import CHROMIUM, chromium, in_process_tasks, sms_file  # noqa: F401 (fixtures)
from tests.threeds.builders import areq
from tests.threeds.harness import code_in, endpoints  # noqa: F401 (fixture)
from tests.threeds.merchant_site import MerchantSite

SESSION_DATA = "b29iLW9yZGVyLTQy"
SCREENSHOTS = Path("/tmp")
STATUS_PATH = "/3ds/v2/challenge/status"
OOB_TITLE = "Confirm in your banking app"
FELL_BACK = "The payment could not be confirmed in the app."
# The page polls every 2 s; generous bounds for a loaded CI machine.
PAGE_TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # the live server's thread must see committed rows
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture
def push_file(settings, tmp_path, in_process_tasks):  # noqa: F811
    """Pushes go to the `file` backend, sent in this process (the live server's thread)."""
    settings.PUSH_BACKEND = "file"
    settings.PUSH_FILE_PATH = str(tmp_path / "push.jsonl")

    class Pushes:
        path = tmp_path / "push.jsonl"

        def lines(self) -> list[str]:
            return [line for line in self.path.read_text().splitlines() if line.strip()] if self.path.exists() else []

    return Pushes()


@pytest.fixture
def merchant():
    site = MerchantSite().start()
    yield site
    site.stop()


@pytest.fixture
def acs_url(live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url  # the ARes's acsURL points at the live server
    assert live_server.url.startswith("http://localhost:")  # another site than the merchant's 127.0.0.1
    return f"{live_server.url}/3ds/v2/challenge"


@pytest.fixture
def bank(endpoints):  # noqa: F811
    return make_oob_bank(notification_base_url=endpoints.issuer_base_url)


@pytest.fixture
def app(live_server, acs_url, bank, push_file, sms_file) -> HttpApp:  # noqa: F811
    return register_app_over_http(live_server.url, bank)


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 900, "height": 800}, locale="en-US")
    page = context.new_page()
    page.console_messages = []
    page.status_polls = []
    page.on("console", lambda m: page.console_messages.append(m.text))
    page.on("pageerror", lambda e: page.console_messages.append(f"pageerror: {e}"))
    page.on("response", lambda r: page.status_polls.append(r.status) if r.url.endswith(STATUS_PATH) else None)
    yield page
    context.close()


def pump_until(page, predicate, what: str, timeout_ms: int = PAGE_TIMEOUT_MS):
    """Wait for something the page's listeners record. Playwright's sync API delivers events
    only while it is called, so wait inside it rather than in time.sleep."""
    waited = 0
    while not predicate():
        if waited >= timeout_ms:
            pytest.fail(f"{what} within {timeout_ms / 1000:.0f}s; console: {sorted(set(page.console_messages))}")
        page.wait_for_timeout(100)
        waited += 100


def console_problems(page) -> list[str]:
    """CSP violations (e.g. connect-src refusing the status poll) and uncaught script errors."""
    return [m for m in page.console_messages if "Content Security Policy" in m or m.startswith("pageerror")]


def authenticate(*, live_server, merchant, endpoints, acs_url, bank, window="05"):  # noqa: F811
    """The 3DS Server's part: AReq to the ACS, then the checkout page that posts the CReq."""
    message = areq(
        pan=bank.pan, threeDSRequestorChallengeInd="04", notificationURL=merchant.notification_url, dsURL=endpoints.ds_url,
    )
    ares = requests.post(f"{live_server.url}/3ds/v2/areq", json=message, timeout=30).json()
    assert (ares["transStatus"], ares["authenticationType"]) == ("C", "03"), ares
    assert ares["acsURL"] == acs_url
    creq = {
        "threeDSServerTransID": message["threeDSServerTransID"],
        "acsTransID": ares["acsTransID"],
        "challengeWindowSize": window,
        "messageVersion": message["messageVersion"],
        "messageType": "CReq",
    }
    return message, ares, merchant.checkout(acs_url=ares["acsURL"], creq=creq, session_data=SESSION_DATA)


def oob_page(page, checkout: str):
    """The merchant's checkout; the iframe shows the OOB page, without a code field."""
    page.goto(checkout)
    frame = page.frame_locator("iframe#challenge")
    frame.get_by_role("heading", name=OOB_TITLE).wait_for(timeout=PAGE_TIMEOUT_MS)
    assert frame.locator("#otp").count() == 0 and frame.locator("input[name=challengeDataEntry]").count() == 0
    assert "This page moves on by itself" in frame.locator(".lead").inner_text()
    assert frame.locator(".merchant").inner_text() == "Tokyo Books"
    assert frame.get_by_role("button", name="Continue").is_visible()
    return frame


def the_pending_request(app: HttpApp, push_file, acs_trans_id: str) -> dict:
    """What the app does on the push: the push names the request; the app fetches it."""
    [line] = wait_for(push_file.lines, timeout=20)
    assert acs_trans_id in line
    pushed = json.loads(line)
    assert pushed["data"] == {"type": "3ds_authn_request", "acsTransId": acs_trans_id}
    assert "Tokyo Books" not in line and app.push_token not in line
    [pending] = app.pending()
    assert pending["acsTransId"] == acs_trans_id and pending["merchantName"] == "Tokyo Books"
    return pending


def test_the_app_approves_and_the_page_moves_on_by_itself_to_y_at_the_merchant(
    page, live_server, merchant, endpoints, acs_url, bank, app, push_file, sms_file  # noqa: F811
):
    message, ares, checkout = authenticate(live_server=live_server, merchant=merchant, endpoints=endpoints, acs_url=acs_url, bank=bank)
    acs_trans_id = ares["acsTransID"]
    frame = oob_page(page, checkout)
    page.locator("iframe#challenge").screenshot(path=str(SCREENSHOTS / "oob-challenge-waiting.png"))
    # The page polls while the app has not answered, and stays where it is.
    pump_until(page, lambda: 200 in page.status_polls, "no status poll answered 200")
    assert merchant.notifications == []

    the_pending_request(app, push_file, acs_trans_id)
    approved = app.approve(acs_trans_id)
    assert approved.status_code == 200 and approved.json()["result"] == "verified", approved.text

    # No click: the page's poll sees the answer, posts "continue", the final page posts the CRes.
    notification = merchant.wait_for_notification(timeout=PAGE_TIMEOUT_MS / 1000)
    cres = notification.cres
    assert (cres["transStatus"], cres["challengeCompletionInd"], cres["acsTransID"]) == ("Y", "Y", acs_trans_id)
    assert cres["threeDSServerTransID"] == message["threeDSServerTransID"]
    assert notification.form["threeDSSessionData"] == SESSION_DATA
    assert notification.origin == live_server.url  # posted by the ACS page, from inside the iframe
    page.frame_locator("iframe#challenge").locator("#done").wait_for(timeout=PAGE_TIMEOUT_MS)
    assert len(merchant.notifications) == 1

    rreq = endpoints.wait_rreq(acs_trans_id)
    assert (rreq["transStatus"], rreq["eci"], rreq["authenticationType"]) == ("Y", "05", "03")
    note = endpoints.wait_notification(acs_trans_id)
    assert note.signature_valid(bank.webhook_secret)
    payload = note.payload
    assert (payload["operation"], payload["status"]) == ("3DS_CHALLENGE_OOB", "SUCCESSFUL")
    assert payload["details"]["transStatus"] == "Y" and payload["details"]["fallbackReason"] is None
    assert len(endpoints.rreqs(acs_trans_id)) == 1 and len(endpoints.notifications(acs_trans_id)) == 1
    assert endpoints.violations == []

    assert sms_file.messages() == []  # nothing was sent by SMS
    assert Transaction.objects.get(pk=acs_trans_id).authentication_value == rreq["authenticationValue"]
    assert console_problems(page) == [], page.console_messages


def test_a_cancel_in_the_app_turns_the_page_into_the_sms_code_page_and_the_code_gives_y(
    page, live_server, merchant, endpoints, acs_url, bank, app, push_file, sms_file  # noqa: F811
):
    _, ares, checkout = authenticate(
        live_server=live_server, merchant=merchant, endpoints=endpoints, acs_url=acs_url, bank=bank, window="03"
    )
    acs_trans_id = ares["acsTransID"]
    oob_page(page, checkout)
    the_pending_request(app, push_file, acs_trans_id)
    cancelled = app.cancel(acs_trans_id)
    assert cancelled.status_code == 200 and cancelled.json() == {"result": "cancelled"}, cancelled.text

    # No click: the page turns into the SMS code page, and says why.
    frame = page.frame_locator("iframe#challenge")
    frame.locator("#otp").wait_for(timeout=PAGE_TIMEOUT_MS)
    message = frame.locator("p.msg").inner_text()
    assert FELL_BACK in message and bank.phone[-4:] in message and bank.phone not in message
    assert frame.get_by_role("heading", name=OOB_TITLE).count() == 0
    page.locator("iframe#challenge").screenshot(path=str(SCREENSHOTS / "oob-challenge-fell-back.png"))
    assert merchant.notifications == []

    [sms] = wait_for(sms_file.messages, timeout=20)
    assert sms["to"] == bank.phone
    frame.locator("#otp").fill(code_in(sms["body"]))
    frame.get_by_role("button", name="Submit").click()

    notification = merchant.wait_for_notification(timeout=PAGE_TIMEOUT_MS / 1000)
    assert (notification.cres["transStatus"], notification.cres["acsTransID"]) == ("Y", acs_trans_id)
    assert notification.form["threeDSSessionData"] == SESSION_DATA

    rreq = endpoints.wait_rreq(acs_trans_id)
    assert (rreq["transStatus"], rreq["authenticationType"]) == ("Y", "02")
    note = endpoints.wait_notification(acs_trans_id)
    assert note.signature_valid(bank.webhook_secret)
    payload = note.payload
    assert (payload["operation"], payload["status"]) == ("3DS_CHALLENGE_OTP_SMS", "SUCCESSFUL")
    assert payload["details"]["fallbackReason"] == "cancelled_in_app"
    assert len(endpoints.rreqs(acs_trans_id)) == 1 and len(endpoints.notifications(acs_trans_id)) == 1
    assert endpoints.violations == []

    challenge = Challenge.objects.get(transaction_id=acs_trans_id)
    assert (challenge.method, challenge.fallback_reason) == (Challenge.SMS_OTP, "cancelled_in_app")
    assert AuthnRequest.objects.get(challenge_id=acs_trans_id).state == AuthnRequest.CANCELLED
    assert len(sms_file.messages()) == 1
    assert console_problems(page) == [], page.console_messages

