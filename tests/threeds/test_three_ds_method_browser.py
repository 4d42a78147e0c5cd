"""The 3DS Method (SPEC §3.8) in a real headless Chromium, across origins: the merchant's page
(http://127.0.0.1:<port>, tests/threeds/merchant_site.py) posts threeDSMethodData into a hidden
iframe at the ACS (pytest-django's live server, http://localhost:<port>); the page collects the
browser data and notifies the merchant's threeDSMethodNotificationURL within 10 s; the AReq that
follows with threeDSCompInd Y finds the data. No CSP violation on the way."""

import time
import uuid
from pathlib import Path

import pytest
import requests

from apps.threeds.models import ThreeDSMethodData, Transaction
from tests.support.fixtures import CHROMIUM, chromium
from tests.threeds.builders import areq
from tests.threeds.merchant_site import b64url_json, creq_encode
from tests.threeds.test_browser_e2e import PAN, acs_url, cardholder_locale, enrolled, merchant, page

# The browser tests' fixtures, shared rather than re-declared (named here so linters see them used).
SHARED_FIXTURES = (chromium, acs_url, cardholder_locale, enrolled, merchant, page)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # the live server's thread must see committed rows
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]

WITHIN = 10.0  # SPEC §3.8: the notification leaves within 10 s in all


def method_checkout(merchant, live_server, trans_id: str) -> str:
    method_data = creq_encode({"threeDSServerTransID": trans_id, "threeDSMethodNotificationURL": merchant.notification_url})
    return merchant.method_page(method_url=f"{live_server.url}/3ds/v2/method", method_data=method_data)


def test_the_method_page_collects_notifies_within_10_s_and_the_areq_finds_it(page, live_server, merchant, acs_url, enrolled):
    trans_id = str(uuid.uuid4())
    started = time.monotonic()
    page.goto(method_checkout(merchant, live_server, trans_id))
    notification = merchant.wait_for_notification(timeout=WITHIN)
    assert notification.received_at - started < WITHIN
    assert b64url_json(notification.form["threeDSMethodData"]) == {"threeDSServerTransID": trans_id}
    assert "cres" not in notification.form

    data = ThreeDSMethodData.objects.get(three_ds_server_trans_id=trans_id).data
    assert {"screenWidth", "screenHeight", "colorDepth", "tzOffset", "language", "languages", "platform", "canvasHash"} <= set(data)
    assert data["language"] == "en-US"

    message = areq(pan=PAN, threeDSServerTransID=trans_id, threeDSCompInd="Y", notificationURL=merchant.notification_url)
    ares = requests.post(f"{live_server.url}/3ds/v2/areq", json=message, timeout=10).json()
    assert ares["messageType"] == "ARes", ares
    assert Transaction.objects.get(acs_trans_id=ares["acsTransID"]).three_ds_method == "completed"
    assert page.csp_violations == []


def test_a_collection_that_never_answers_still_notifies_within_10_s(page, live_server, merchant, acs_url, enrolled):
    page.context.route("**/3ds/v2/method/data", lambda route: None)  # held: never answered
    trans_id = str(uuid.uuid4())
    started = time.monotonic()
    page.goto(method_checkout(merchant, live_server, trans_id))
    notification = merchant.wait_for_notification(timeout=WITHIN)
    assert notification.received_at - started < WITHIN
    assert b64url_json(notification.form["threeDSMethodData"]) == {"threeDSServerTransID": trans_id}
    assert not ThreeDSMethodData.objects.exists()
    assert page.csp_violations == []


def test_bad_method_data_notifies_no_one(page, live_server, merchant, acs_url):
    url = merchant.method_page(method_url=f"{live_server.url}/3ds/v2/method", method_data="not-base64url!")
    page.goto(url)
    frame = page.frame_locator("iframe#method")
    frame.locator("h1").wait_for(state="attached", timeout=10_000)
    time.sleep(1)
    assert merchant.notifications == []
