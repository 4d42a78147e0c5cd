"""The browser challenge in a real headless Chromium, across origins, as a cardholder meets it.

The ACS runs on pytest-django's live server (http://localhost:<port>); the merchant's checkout
runs on another site (http://127.0.0.1:<port>, tests/threeds/merchant_site.py) and posts the CReq
into its iframe. The cardholder reads the code from the SMS (the `file` backend), types it in the
iframe, and the ACS page posts the final CRes back to the merchant's notificationURL.

Screenshots of the page in each challenge window size go to /tmp/threeds-challenge-*.png.
"""

from pathlib import Path

import pytest
import requests

from apps.cards.models import Phone
from apps.otp.services import otp_policy_create_default, otp_policy_save
from apps.threeds.models import RiskPolicy
from apps.threeds.simulator.messages import wrong_code as wrong
from tests.factories import CardholderFactory, IssuerFactory, make_card
from tests.support.fixtures import CHROMIUM, chromium, in_process_tasks, sms_file  # noqa: F401 (fixtures)
from tests.threeds.builders import areq
from tests.threeds.merchant_site import DirectoryServerStub, MerchantSite

PAN = "4111111111111111"
SESSION_DATA = "c2Vzc2lvbi1mb3Itb3JkZXItNDI"
SCREENSHOTS = Path("/tmp")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # the live server's thread must see committed rows
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture
def merchant():
    site = MerchantSite().start()
    yield site
    site.stop()


@pytest.fixture
def ds():
    stub = DirectoryServerStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def acs_url(live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url  # the ARes's acsURL points at the live server
    assert live_server.url.startswith("http://localhost:")  # another site than the merchant's 127.0.0.1
    return f"{live_server.url}/3ds/v2/challenge"


@pytest.fixture
def cardholder_locale():
    return "en"


@pytest.fixture
def enrolled(db, cardholder_locale):
    issuer = IssuerFactory(name="Sakura Bank")
    cardholder = CardholderFactory(issuer=issuer, locale=cardholder_locale)
    make_card(cardholder=cardholder, pan=PAN)
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True)
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
    return issuer


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 900, "height": 800}, locale="en-US")
    page = context.new_page()
    page.csp_violations = []
    page.on("console", lambda m: page.csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    context.close()


def authenticate(*, live_server, merchant, ds, acs_url, window="05", session_data=SESSION_DATA, **areq_overrides):
    """The 3DS Server's part: AReq to the ACS, then the checkout page that posts the CReq."""
    message = areq(
        pan=PAN, threeDSRequestorChallengeInd="04", notificationURL=merchant.notification_url, dsURL=ds.rreq_url, **areq_overrides
    )
    ares = requests.post(f"{live_server.url}/3ds/v2/areq", json=message, timeout=10).json()
    assert ares["transStatus"] == "C" and ares["acsURL"] == acs_url, ares
    creq = {
        "threeDSServerTransID": message["threeDSServerTransID"],
        "acsTransID": ares["acsTransID"],
        "challengeWindowSize": window,
        "messageVersion": message["messageVersion"],
        "messageType": "CReq",
    }
    return message, ares, merchant.checkout(acs_url=ares["acsURL"], creq=creq, session_data=session_data)


def challenge_frame(page):
    frame = page.frame_locator("iframe#challenge")
    frame.locator("#otp").wait_for(timeout=15_000)
    return frame


def test_the_right_code_in_the_iframe_ends_y_at_the_merchants_notification_url(
    page, live_server, merchant, ds, acs_url, enrolled, sms_file
):
    message, ares, checkout = authenticate(live_server=live_server, merchant=merchant, ds=ds, acs_url=acs_url)
    page.goto(checkout)
    frame = challenge_frame(page)
    assert frame.locator(".merchant").inner_text() == "Tokyo Books"
    assert frame.locator(".amount").inner_text() == "¥1,500"
    assert "+81 ••• •••• 5678" in frame.locator(".lead").inner_text()
    assert "Sakura Bank" in frame.locator(".issuer-name").inner_text()
    page.locator("iframe#challenge").screenshot(path=str(SCREENSHOTS / "threeds-challenge-page.png"))

    [sms] = sms_file.messages()
    frame.locator("#otp").fill(sms_file.last_code())
    frame.get_by_role("button", name="Submit").click()

    notification = merchant.wait_for_notification()
    assert notification.cres["transStatus"] == "Y" and notification.cres["challengeCompletionInd"] == "Y"
    assert notification.cres["acsTransID"] == ares["acsTransID"]
    assert notification.cres["threeDSServerTransID"] == message["threeDSServerTransID"]
    assert notification.form["threeDSSessionData"] == SESSION_DATA
    assert notification.origin == live_server.url  # posted by the ACS page, from inside the iframe
    frame.locator("#done").wait_for()  # the iframe moved on to the merchant's notification page
    assert len(merchant.notifications) == 1 and len(sms_file.messages()) == 1
    assert [r["transStatus"] for r in ds.rreqs] == ["Y"]
    assert page.csp_violations == []


def test_a_wrong_code_then_the_right_one(page, live_server, merchant, ds, acs_url, enrolled, sms_file):
    _, _, checkout = authenticate(live_server=live_server, merchant=merchant, ds=ds, acs_url=acs_url, window="02")
    page.goto(checkout)
    frame = challenge_frame(page)
    code = sms_file.last_code()
    frame.locator("#otp").fill(wrong(code))
    frame.get_by_role("button", name="Submit").click()
    frame.get_by_text("That code is not right. 2 attempts left.").wait_for()
    assert frame.locator("#otp").input_value() == ""  # the page does not keep what was typed
    page.locator("iframe#challenge").screenshot(path=str(SCREENSHOTS / "threeds-challenge-wrong-code.png"))
    frame.locator("#otp").fill(code)
    frame.locator("#otp").press("Enter")  # Enter submits the code, not resend or cancel

    notification = merchant.wait_for_notification()
    assert notification.cres["transStatus"] == "Y" and notification.form["threeDSSessionData"] == SESSION_DATA
    assert page.csp_violations == []


def test_cancel_ends_n(page, live_server, merchant, ds, acs_url, enrolled, sms_file):
    _, ares, checkout = authenticate(live_server=live_server, merchant=merchant, ds=ds, acs_url=acs_url, window="01")
    page.goto(checkout)
    frame = challenge_frame(page)
    frame.get_by_role("button", name="Cancel").click()  # no code typed: the field's `required` must not block it

    notification = merchant.wait_for_notification()
    assert notification.cres["transStatus"] == "N" and notification.cres["acsTransID"] == ares["acsTransID"]
    assert notification.form["threeDSSessionData"] == SESSION_DATA
    assert ds.rreqs[-1]["challengeCancel"] == "01"


@pytest.mark.parametrize("cardholder_locale", ["ja"])
def test_a_japanese_cardholder_resends_and_uses_the_new_code(page, live_server, merchant, ds, acs_url, enrolled, sms_file):
    policy = otp_policy_create_default(issuer=enrolled).policy
    policy.resend_cooldown_seconds = 0
    otp_policy_save(policy=policy, actor="tests")

    _, _, checkout = authenticate(live_server=live_server, merchant=merchant, ds=ds, acs_url=acs_url, window="03")
    page.goto(checkout)
    frame = challenge_frame(page)
    assert "お支払いの本人認証" in frame.locator("h1").inner_text()
    frame.get_by_role("button", name="コードを再送信").click()
    frame.get_by_text("新しいコードを送信しました").wait_for()
    page.locator("iframe#challenge").screenshot(path=str(SCREENSHOTS / "threeds-challenge-ja-resent.png"))
    new = sms_file.last_code()
    assert len(sms_file.messages()) == 2
    frame.locator("#otp").fill(new)
    frame.get_by_role("button", name="送信", exact=True).click()
    assert merchant.wait_for_notification().cres["transStatus"] == "Y"


def test_without_javascript_the_continue_button_posts_the_result(chromium, live_server, merchant, ds, acs_url, enrolled, sms_file):
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        _, _, checkout = authenticate(live_server=live_server, merchant=merchant, ds=ds, acs_url=acs_url)
        page.goto(checkout)
        page.get_by_role("button", name="Continue to your bank").click()  # the merchant's no-JS fallback
        frame = challenge_frame(page)
        frame.locator("#otp").fill(sms_file.last_code())
        frame.get_by_role("button", name="Submit").click()
        frame.get_by_role("button", name="Continue").wait_for()
        page.locator("iframe#challenge").screenshot(path=str(SCREENSHOTS / "threeds-challenge-final-nojs.png"))
        frame.get_by_role("button", name="Continue").click()  # the final page cannot post itself
        notification = merchant.wait_for_notification()
        assert notification.cres["transStatus"] == "Y" and notification.form["threeDSSessionData"] == SESSION_DATA
    finally:
        context.close()


@pytest.mark.parametrize("window", ["01", "02", "03", "04", "05"])
def test_the_page_fits_its_challenge_window(page, live_server, merchant, ds, acs_url, enrolled, sms_file, window):
    _, _, checkout = authenticate(live_server=live_server, merchant=merchant, ds=ds, acs_url=acs_url, window=window)
    page.goto(checkout)
    frame = challenge_frame(page)
    iframe = page.locator("iframe#challenge").bounding_box()
    for name in ("Submit", "Resend code", "Cancel"):
        box = frame.get_by_role("button", name=name).bounding_box()
        assert box["x"] >= iframe["x"] and box["x"] + box["width"] <= iframe["x"] + iframe["width"] + 0.5, name
        assert box["y"] + box["height"] <= iframe["y"] + iframe["height"] + 0.5, f"{name} below the {window} window"
    page.locator("iframe#challenge").screenshot(path=str(SCREENSHOTS / f"threeds-challenge-{window}.png"))
    assert page.csp_violations == []
