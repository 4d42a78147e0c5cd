"""The browser challenge page during an OOB challenge, through Django's test client: the page
waits, its status poll says when to move on, and "continue" hands back the result or turns the
page into the SMS code page. (Real Chromium: tests/oob/test_oob_browser.py.)"""

import base64
import json
import re
from urllib.parse import urlencode

import pytest

from tests.oob.conftest import send_areq
from tests.threeds.merchant_site import creq_encode

pytestmark = pytest.mark.usefixtures("push_file", "sms_file")
ACS_URL = "/3ds/v2/challenge"
STATUS_URL = "/3ds/v2/challenge/status"


def hidden_fields(html: str) -> dict:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def form_post(client, url, data: dict):
    return client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")


def open_page(ds, oob_card):
    tx = send_areq(ds, oob_card, channel="02")
    assert tx.ares["authenticationType"] == "03"
    creq = {
        "threeDSServerTransID": tx.message["threeDSServerTransID"], "acsTransID": tx.acs_trans_id,
        "challengeWindowSize": "03", "messageVersion": tx.message["messageVersion"], "messageType": "CReq",
    }
    page = form_post(ds, ACS_URL, {"creq": creq_encode(creq), "threeDSSessionData": "c2Vzc2lvbg"})
    assert page.status_code == 200
    return tx, page.content.decode()


def status(ds, html: str):
    fields = hidden_fields(html)
    return form_post(ds, STATUS_URL, {"acsTransID": fields["acsTransID"], "pageToken": fields["pageToken"]})


def final_cres(html: str) -> dict:
    value = hidden_fields(html)["cres"]
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def test_the_page_asks_to_confirm_in_the_app_and_offers_no_code_field(ds, app, oob_card):
    _, html = open_page(ds, oob_card)
    assert "Confirm in your banking app" in html and "challengeDataEntry" not in html
    assert f'data-oob-status="{STATUS_URL}"' in html


def test_the_status_poll_says_wait_until_the_app_approves_then_the_page_hands_back_y(ds, app, oob_card):
    tx, html = open_page(ds, oob_card)
    r = status(ds, html)
    assert r.status_code == 200 and r.json() == {"waiting": True}
    assert "no-store" in r["Cache-Control"]
    assert app.approve(tx.acs_trans_id).status_code == 200
    assert status(ds, html).json() == {"waiting": False}
    final = form_post(ds, ACS_URL, {**hidden_fields(html), "action": "continue"}).content.decode()
    cres = final_cres(final)
    assert cres["transStatus"] == "Y" and cres["acsTransID"] == tx.acs_trans_id
    assert hidden_fields(final)["threeDSSessionData"] == "c2Vzc2lvbg"


def test_the_poll_does_not_spend_the_page_token(ds, app, oob_card):
    _, html = open_page(ds, oob_card)
    for _ in range(3):
        assert status(ds, html).status_code == 200
    page = form_post(ds, ACS_URL, {**hidden_fields(html), "action": "continue"})
    assert "The payment is not confirmed yet." in page.content.decode()


def test_the_status_poll_needs_the_pages_token(ds, app, oob_card):
    tx, html = open_page(ds, oob_card)
    for token in ("", "forged", hidden_fields(html)["pageToken"] + "x"):
        r = form_post(ds, STATUS_URL, {"acsTransID": tx.acs_trans_id, "pageToken": token})
        assert r.status_code == 403 and "waiting" not in r.json()
    assert form_post(ds, STATUS_URL, {"acsTransID": "nope", "pageToken": "x"}).status_code == 403
    assert ds.get(STATUS_URL).status_code == 405


def test_after_a_cancel_in_the_app_the_page_becomes_the_code_page_and_says_why(ds, app, oob_card, sms_file):
    tx, html = open_page(ds, oob_card)
    assert app.cancel(tx.acs_trans_id).status_code == 200
    assert status(ds, html).json() == {"waiting": False}
    page = form_post(ds, ACS_URL, {**hidden_fields(html), "action": "continue"}).content.decode()
    assert "could not be confirmed in the app" in page and "challengeDataEntry" in page
    final = form_post(ds, ACS_URL, {**hidden_fields(page), "action": "submit", "challengeDataEntry": sms_file.last_code()})
    assert final_cres(final.content.decode())["transStatus"] == "Y"


def test_the_page_allows_its_own_status_poll_in_its_csp(ds, app, oob_card):
    tx = send_areq(ds, oob_card, channel="02")
    creq = {
        "threeDSServerTransID": tx.message["threeDSServerTransID"], "acsTransID": tx.acs_trans_id,
        "challengeWindowSize": "05", "messageVersion": tx.message["messageVersion"], "messageType": "CReq",
    }
    page = form_post(ds, ACS_URL, {"creq": creq_encode(creq)})
    assert "connect-src 'self'" in page["Content-Security-Policy"]
