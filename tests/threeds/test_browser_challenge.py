"""The browser challenge page at acsURL (SPEC §3.2), through Django's test client: AReq → CReq
→ the page → code / resend / cancel → the final form posting the CRes to notificationURL.

SMS go to the `file` backend with tasks run in this process; RReqs go to a DS stub."""

import base64
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.otp.models import OtpSession
from apps.threeds.challenge import challenges_time_out
from apps.threeds.models import Challenge, RiskPolicy, Transaction
from apps.threeds.simulator.messages import browser_creq
from apps.threeds.simulator.messages import wrong_code as wrong
from tests.otp.conftest import policy, set_policy  # noqa: F401 (fixtures)
from tests.support.fixtures import in_process_tasks, sms_file  # noqa: F401 (fixtures)
from tests.threeds.builders import areq
from tests.threeds.merchant_site import DirectoryServerStub, b64url_json, creq_encode

pytestmark = pytest.mark.django_db
PAN = "4111111111111111"
ACS_URL = "/3ds/v2/challenge"
SESSION_DATA = "eyJvcmRlciI6IjQyIn0"  # what the 3DS Server wants back, untouched


class Page(HTMLParser):
    """The forms of a response: action, and the named fields with their values."""

    def __init__(self, text: str):
        super().__init__()
        self.forms: list[dict] = []
        self.inputs: dict[str, dict] = {}
        self.body_class = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "fields": {}})
        elif tag == "input" and self.forms:
            self.inputs[attrs.get("name") or attrs.get("id")] = attrs
            if attrs.get("type") == "hidden":
                self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")
        elif tag == "body":
            self.body_class = attrs.get("class", "")


@pytest.fixture
def ds():
    stub = DirectoryServerStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def acs(client, issuer, card, phone, policy, sms_file, ds, django_capture_on_commit_callbacks):  # noqa: F811
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
    return Acs(client, sms_file, ds, django_capture_on_commit_callbacks)


class Acs:
    """Plays the 3DS Server (AReq, the CReq post) and the cardholder's browser (the page's forms)."""

    def __init__(self, client, sms, ds, capture):
        self.client, self.sms, self.ds, self.capture = client, sms, ds, capture

    def post(self, url, data: dict):
        # Like a browser's form post; on_commit work (SMS, RReq) runs as it would after the commit.
        with self.capture(execute=True):
            return self.client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")

    def areq(self, **overrides) -> tuple[dict, dict]:
        message = areq(pan=PAN, threeDSRequestorChallengeInd="04", dsURL=self.ds.rreq_url, **overrides)
        with self.capture(execute=True):
            ares = self.client.post("/3ds/v2/areq", message, content_type="application/json").json()
        return message, ares

    def creq(self, message, ares, **overrides) -> dict:
        return browser_creq(message, ares["acsTransID"], **overrides)

    def first_post(self, message, ares, *, session_data=SESSION_DATA, **creq_overrides):
        data = {"creq": creq_encode(self.creq(message, ares, **creq_overrides))}
        if session_data is not None:
            data["threeDSSessionData"] = session_data
        return self.post(ACS_URL, data)

    def start(self, **areq_overrides):
        message, ares = self.areq(**areq_overrides)
        assert ares["transStatus"] == "C", ares
        response = self.first_post(message, ares)
        assert response.status_code == 200
        return message, ares, response

    def act(self, response, action: str, code: str | None = None):
        form = Page(response.content.decode()).forms[0]
        assert form["action"] == ACS_URL
        data = {**form["fields"], "action": action}
        if code is not None:
            data["challengeDataEntry"] = code
        return self.post(ACS_URL, data)


def final_form(response) -> tuple[str, dict, dict]:
    """(action, decoded cres, all fields) of a final page."""
    [form] = Page(response.content.decode()).forms
    return form["action"], b64url_json(form["fields"]["cres"]), form["fields"]


def visible_text(response) -> str:
    return re.sub(r"<[^>]+>", "", response.content.decode())


# ---------------------------------------------------------------- the page


def test_the_first_creq_shows_the_challenge_page_and_sends_one_sms(acs, sms_file, issuer):
    _, ares, response = acs.start()
    html = response.content.decode()
    assert response["Content-Type"].startswith("text/html")
    assert issuer.name in html and "Tokyo Books" in html and "¥1,500" in html
    assert "+81 ••• •••• 5678" in html and "9012345678" not in html
    assert "Verify your payment" in html and ">Submit<" in html and ">Resend code<" in html and ">Cancel<" in html
    field = Page(html).inputs["challengeDataEntry"]
    assert field["inputmode"] == "numeric" and field["autocomplete"] == "one-time-code"
    [sms] = sms_file.messages()
    assert sms_file.last_code() not in html and PAN not in html and PAN[-4:] not in html
    challenge = Challenge.objects.get(transaction_id=ares["acsTransID"])
    assert challenge.state == Challenge.IN_PROGRESS and challenge.three_ds_session_data == SESSION_DATA


def test_the_page_speaks_japanese(acs, cardholder):
    cardholder.locale = "ja"
    cardholder.save(update_fields=["locale"])
    html = acs.start()[2].content.decode()
    assert 'lang="ja"' in html and "お支払いの本人認証" in html and "コードを再送信" in html and "キャンセル" in html
    assert "¥1,500" in html and "+81 ••• •••• 5678" in html


def test_full_width_digits_are_the_code(acs, sms_file, cardholder):
    cardholder.locale = "ja"
    cardholder.save(update_fields=["locale"])
    _, _, page = acs.start()
    page = acs.act(page, "submit", "١٢٣٤٥٦")  # other scripts' digits are not a code: no attempt spent
    assert "SMSに記載されたコードを入力してください。" in page.content.decode()
    full_width = sms_file.last_code().translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert final_form(acs.act(page, "submit", full_width))[1]["transStatus"] == "Y"


def test_the_page_speaks_french_with_french_amounts(acs, cardholder):
    cardholder.locale = "fr"
    cardholder.save(update_fields=["locale"])
    html = acs.start(purchaseAmount="123456", purchaseCurrency="978", purchaseExponent="2")[2].content.decode()
    assert 'lang="fr"' in html and "Vérifiez votre paiement" in html and "Renvoyer le code" in html
    assert "1\u202f234,56\u00a0€" in html


@pytest.mark.parametrize("size", ["01", "02", "03", "04", "05"])
def test_the_page_is_sized_for_the_challenge_window(acs, size):
    message, ares = acs.areq()
    response = acs.first_post(message, ares, challengeWindowSize=size)
    assert Page(response.content.decode()).body_class == f"window-{size}"


def test_the_page_may_be_framed_by_any_site_and_is_never_cached(acs):
    response = acs.start()[2]
    assert "X-Frame-Options" not in response
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors *" in csp and "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "form-action 'self'" in csp  # the page's own form posts only to the ACS
    assert "no-store" in response["Cache-Control"]


def test_other_pages_still_refuse_framing(client, db):
    assert client.get("/admin/login/")["X-Frame-Options"] == "DENY"


def test_the_page_script_and_style_are_served(client):
    for path in ("/static/threeds/challenge.js", "/static/threeds/challenge.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        b"".join(response.streaming_content if response.streaming else [response.content])


def test_a_reload_of_the_first_post_sends_no_second_sms(acs, sms_file):
    message, ares, _ = acs.start()
    again = acs.first_post(message, ares)
    assert again.status_code == 200 and "Verify your payment" in again.content.decode()
    assert len(sms_file.messages()) == 1


# ---------------------------------------------------------------- the code


def test_the_right_code_ends_y_and_posts_the_cres_to_the_notification_url(acs, sms_file, ds):
    message, ares, page = acs.start()
    final = acs.act(page, "submit", sms_file.last_code())
    action, cres, fields = final_form(final)
    assert action == message["notificationURL"]
    assert cres == {
        "messageType": "CRes", "messageVersion": "2.2.0", "threeDSServerTransID": message["threeDSServerTransID"],
        "acsTransID": ares["acsTransID"], "transStatus": "Y", "challengeCompletionInd": "Y",
    }
    assert fields["threeDSSessionData"] == SESSION_DATA
    assert "=" not in fields["cres"] and "+" not in fields["cres"] and "/" not in fields["cres"]  # base64url, no padding
    assert "form-action *" in final["Content-Security-Policy"] and "X-Frame-Options" not in final
    assert "Payment verified." in final.content.decode()
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert tx.trans_status == "Y" and tx.eci == "05" and len(tx.authentication_value) == 28
    assert [r["transStatus"] for r in ds.rreqs] == ["Y"]


def test_a_wrong_code_says_so_with_the_attempts_left(acs, sms_file):
    _, ares, page = acs.start()
    code = sms_file.last_code()
    page = acs.act(page, "submit", wrong(code))
    html = page.content.decode()
    assert page.status_code == 200 and "That code is not right. 2 attempts left." in html
    assert code not in html and wrong(code) not in html  # neither the code nor the guess is echoed
    page = acs.act(page, "submit", wrong(code))
    assert "1 attempt left." in page.content.decode()


def test_three_wrong_codes_end_n(acs, sms_file, ds):
    message, ares, page = acs.start()
    code = sms_file.last_code()
    for _ in range(3):
        page = acs.act(page, "submit", wrong(code))
    action, cres, fields = final_form(page)
    assert action == message["notificationURL"] and cres["transStatus"] == "N" and cres["challengeCompletionInd"] == "Y"
    assert fields["threeDSSessionData"] == SESSION_DATA
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert (tx.trans_status, tx.trans_status_reason) == ("N", "19")
    assert ds.rreqs[-1]["transStatus"] == "N"


def test_something_that_is_not_a_code_costs_no_attempt(acs, sms_file):
    _, ares, page = acs.start()
    page = acs.act(page, "submit", "")
    assert "Enter the code from the SMS." in page.content.decode()
    page = acs.act(page, "submit", "12ab56")
    assert OtpSession.objects.get(acs_trans_id=ares["acsTransID"]).attempts_used == 0
    final = acs.act(page, "submit", " ".join(sms_file.last_code()))  # typed with spaces: still the code
    assert final_form(final)[1]["transStatus"] == "Y"


def test_an_expired_code_says_so(acs, sms_file):
    _, ares, page = acs.start()
    OtpSession.objects.get(acs_trans_id=ares["acsTransID"]).codes.update(expires_at="2000-01-01T00:00:00Z")
    page = acs.act(page, "submit", sms_file.last_code())
    assert "This code has expired. Ask for a new code." in page.content.decode()


# ---------------------------------------------------------------- resend and cancel


def test_a_resent_code_works_and_the_old_one_does_not(acs, sms_file, set_policy):  # noqa: F811
    set_policy(resend_cooldown_seconds=0)
    _, ares, page = acs.start()
    old = sms_file.last_code()
    page = acs.act(page, "resend")
    assert "A new code was sent to +81 ••• •••• 5678." in visible_text(page)
    assert len(sms_file.messages()) == 2
    new = sms_file.last_code()
    if new != old:  # one chance in a million that they are equal
        page = acs.act(page, "submit", old)
        assert "2 attempts left" in page.content.decode()
    assert final_form(acs.act(page, "submit", new))[1]["transStatus"] == "Y"


def test_a_resend_within_the_cooldown_is_refused_with_the_wait(acs, sms_file):
    _, _, page = acs.start()
    page = acs.act(page, "resend")
    assert re.search(r"Wait \d+ s before asking for a new code\.", page.content.decode())
    assert len(sms_file.messages()) == 1


def test_a_resend_beyond_the_limit_is_refused_in_the_cardholders_language(acs, sms_file, set_policy, cardholder):  # noqa: F811
    set_policy(resend_cooldown_seconds=0, max_resends=0)
    cardholder.locale = "fr"
    cardholder.save(update_fields=["locale"])
    _, _, page = acs.start()
    page = acs.act(page, "resend")
    assert "Aucun autre code ne peut être envoyé pour ce paiement." in page.content.decode()
    assert len(sms_file.messages()) == 1


def test_cancel_ends_n_with_challenge_cancel_01(acs, ds):
    message, ares, page = acs.start()
    final = acs.act(page, "cancel")
    action, cres, fields = final_form(final)
    assert action == message["notificationURL"] and cres["transStatus"] == "N"
    assert "Verification cancelled." in final.content.decode()
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert tx.challenge_cancel == "01" and tx.challenge.state == Challenge.CANCELLED
    assert ds.rreqs[-1]["challengeCancel"] == "01"


def test_a_finished_challenge_posted_again_shows_the_same_final_page(acs, sms_file):
    message, ares, page = acs.start()
    final = acs.act(page, "submit", sms_file.last_code())
    again = acs.first_post(message, ares)
    assert final_form(again)[1] == final_form(final)[1]
    assert len(sms_file.messages()) == 1


# ---------------------------------------------------------------- the page token


def test_a_post_without_the_page_token_is_refused(acs, sms_file):
    _, ares, page = acs.start()
    response = acs.post(ACS_URL, {"acsTransID": ares["acsTransID"], "action": "submit", "challengeDataEntry": sms_file.last_code()})
    assert response.status_code == 403 and "This page has expired" in response.content.decode()
    assert Transaction.objects.get(acs_trans_id=ares["acsTransID"]).trans_status == ""
    assert "form-action 'none'" in response["Content-Security-Policy"]


def test_the_page_token_of_another_transaction_is_refused(acs, sms_file):
    _, first_ares, first_page = acs.start()
    _, second_ares, _ = acs.start()
    token = Page(first_page.content.decode()).forms[0]["fields"]["pageToken"]
    for action in ("cancel", "submit"):
        response = acs.post(ACS_URL, {"acsTransID": second_ares["acsTransID"], "pageToken": token, "action": action, "challengeDataEntry": "123456"})
        assert response.status_code == 403
    second = Transaction.objects.get(acs_trans_id=second_ares["acsTransID"])
    assert second.trans_status == "" and OtpSession.objects.get(acs_trans_id=second.acs_trans_id).attempts_used == 0


def test_a_page_posted_twice_is_refused_the_second_time(acs, sms_file):
    _, ares, page = acs.start()
    acs.act(page, "submit", wrong(sms_file.last_code()))
    replay = acs.act(page, "submit", wrong(sms_file.last_code()))  # the same form again: its token was used
    assert replay.status_code == 403
    assert OtpSession.objects.get(acs_trans_id=ares["acsTransID"]).attempts_used == 1


# ---------------------------------------------------------------- bad CReqs


@pytest.mark.parametrize(
    "creq",
    [
        "",
        "not base64 at all!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        creq_encode({"messageType": "CReq"}),
        creq_encode({"acsTransID": "not-a-uuid", "threeDSServerTransID": "also-not"}),
        "A" * 5000,
    ],
)
def test_an_unreadable_creq_gets_a_plain_error_page(acs, creq):
    response = acs.post(ACS_URL, {"creq": creq})
    html = response.content.decode()
    assert response.status_code == 400 and "This verification cannot continue" in html
    assert "<form" not in html and "Traceback" not in html


def test_a_creq_padded_or_in_the_standard_alphabet_is_read(acs, sms_file):
    message, ares = acs.areq()
    for filler in ("~~~?", "~~~?x", "~~~?xy"):  # "~~~?" encodes with + and /; one of them needs padding
        encoded = base64.b64encode(json.dumps({**acs.creq(message, ares), "filler": filler}).encode()).decode()
        if encoded.endswith("="):
            break
    assert "+" in encoded and "/" in encoded and encoded.endswith("=")
    response = acs.post(ACS_URL, {"creq": encoded})
    assert response.status_code == 200 and "Verify your payment" in response.content.decode()


def test_a_creq_for_an_unknown_transaction_gets_a_plain_error_page(acs):
    message, ares = acs.areq()
    response = acs.first_post(message, {"acsTransID": "8a880dc0-d2d2-4067-bcb1-b08d1690b26e"})
    assert response.status_code == 404 and "<form" not in response.content.decode()


def test_a_creq_whose_server_trans_id_does_not_match_is_refused_without_telling_the_merchant(acs, sms_file):
    message, ares = acs.areq()
    response = acs.first_post(message, ares, threeDSServerTransID="8a880dc0-d2d2-4067-bcb1-b08d1690b26e")
    assert response.status_code == 400 and "<form" not in response.content.decode()
    assert Challenge.objects.get(transaction_id=ares["acsTransID"]).state == Challenge.AWAITING_CREQ
    assert sms_file.messages() == []


def test_a_creq_for_an_app_transaction_is_refused(acs):
    message, ares = acs.areq(channel="01")
    assert ares["transStatus"] == "C"
    response = acs.first_post(message, ares)
    assert response.status_code == 400 and "<form" not in response.content.decode()


@pytest.mark.parametrize(
    "overrides, code, detail",
    [
        ({"challengeWindowSize": "06"}, "203", "challengeWindowSize"),
        ({"challengeWindowSize": None}, "201", "challengeWindowSize"),
        ({"messageType": "AReq"}, "101", "messageType"),
        ({"messageVersion": "2.4.0"}, "102", "messageVersion"),
        ({"messageVersion": "2.1.0"}, "203", "messageVersion"),
    ],
)
def test_an_invalid_creq_of_a_known_transaction_posts_an_erro_to_the_notification_url(acs, sms_file, overrides, code, detail):
    message, ares = acs.areq()
    response = acs.first_post(message, ares, **overrides)
    action, erro, fields = final_form(response)
    assert response.status_code == 200 and action == message["notificationURL"]
    assert erro["messageType"] == "Erro" and erro["errorComponent"] == "A" and erro["errorMessageType"] == "CReq"
    assert (erro["errorCode"], erro["errorDetail"]) == (code, detail)
    assert erro["acsTransID"] == ares["acsTransID"] and erro["threeDSServerTransID"] == message["threeDSServerTransID"]
    assert fields["threeDSSessionData"] == SESSION_DATA
    assert sms_file.messages() == []  # nothing started


def test_too_long_session_data_is_an_erro(acs):
    message, ares = acs.areq()
    response = acs.first_post(message, ares, session_data="x" * 1025)
    _, erro, fields = final_form(response)
    assert (erro["errorCode"], erro["errorDetail"]) == ("203", "threeDSSessionData") and "threeDSSessionData" not in fields


def test_a_get_is_not_allowed(client, db):
    response = client.get(ACS_URL)
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_a_post_with_nothing_is_refused(acs):
    assert acs.post(ACS_URL, {}).status_code == 403
    assert acs.post(ACS_URL, {"acsTransID": "nope", "pageToken": "x"}).status_code == 403


def test_the_session_data_is_echoed_even_when_absent(acs, sms_file):
    message, ares = acs.areq()
    page = acs.first_post(message, ares, session_data=None)
    _, cres, fields = final_form(acs.act(page, "submit", sms_file.last_code()))
    assert cres["transStatus"] == "Y" and "threeDSSessionData" not in fields


def test_no_page_of_a_whole_challenge_holds_the_code_or_the_pan(acs, sms_file, set_policy):  # noqa: F811
    set_policy(resend_cooldown_seconds=0)
    _, _, page = acs.start()
    pages = [page]
    pages.append(acs.act(pages[-1], "submit", wrong(sms_file.last_code())))
    pages.append(acs.act(pages[-1], "resend"))
    pages.append(acs.act(pages[-1], "submit", sms_file.last_code()))
    codes = {re.search(r"\b\d{6}\b", m["body"]).group(0) for m in sms_file.messages()}
    for response in pages:
        html = response.content.decode()
        assert not any(code in html for code in codes) and PAN not in html
    assert final_form(pages[-1])[1]["transStatus"] == "Y"


# ---------------------------------------------------------------- deadlines and refusals


def test_a_first_creq_after_its_deadline_ends_n_14(acs, sms_file):
    message, ares = acs.areq()
    Challenge.objects.filter(transaction_id=ares["acsTransID"]).update(first_creq_deadline="2000-01-01T00:00:00Z")
    action, cres, fields = final_form(acs.first_post(message, ares))
    assert action == message["notificationURL"] and cres["transStatus"] == "N"
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert (tx.trans_status_reason, tx.challenge_cancel) == ("14", "05") and sms_file.messages() == []


def test_an_sms_the_rules_refuse_ends_the_challenge_n(acs, sms_file, set_policy):  # noqa: F811
    set_policy(allowed_countries=["FR"])
    message, ares = acs.areq()
    _, cres, _ = final_form(acs.first_post(message, ares))
    assert cres["transStatus"] == "N" and sms_file.messages() == []


# ---------------------------------------------------------------- bad input never breaks it


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(
        st.sampled_from(["creq", "threeDSSessionData", "acsTransID", "pageToken", "action", "challengeDataEntry"]),
        st.one_of(st.text(max_size=80), st.sampled_from(["submit", "resend", "cancel", "continue", "e30", "W10"])),
    )
)
def test_any_form_post_gets_a_page_never_a_500(client, fields):
    response = client.post(ACS_URL, urlencode(fields), content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 400, 403, 404)
    assert response["Content-Type"].startswith("text/html") and "frame-ancestors" in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"--x\r\nContent-Disposition: form-data; name=\"creq\"\r\n\r\nabc", "multipart/form-data; boundary=x"),
        (b"creq=%ff%fe", "application/x-www-form-urlencoded"),
        (b'{"creq": "e30"}', "application/json"),
    ],
)
def test_a_malformed_body_gets_a_page(client, db, body, content_type):
    response = client.generic("POST", ACS_URL, body, content_type=content_type)
    assert response.status_code in (400, 403) and response["Content-Type"].startswith("text/html")


@pytest.mark.django_db(transaction=True)
def test_the_same_page_posted_twice_at_once_acts_once(acs, sms_file):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs a database that serves concurrent connections (PostgreSQL)")
    _, ares, page = acs.start()
    form = Page(page.content.decode()).forms[0]["fields"]
    data = urlencode({**form, "action": "submit", "challengeDataEntry": wrong(sms_file.last_code())})
    barrier = threading.Barrier(4)

    def post():
        barrier.wait()
        try:
            return Client().post(ACS_URL, data, content_type="application/x-www-form-urlencoded").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(lambda _: post(), range(4)))
    assert statuses == [200, 403, 403, 403]
    assert OtpSession.objects.get(acs_trans_id=ares["acsTransID"]).attempts_used == 1


def test_an_oob_challenge_without_a_device_any_more_falls_back_to_the_code_page(acs, sms_file):
    # Chosen OOB at the ARes, but the device was revoked before the first CReq (tests/oob has the
    # OOB page itself, with a real device).
    message, ares = acs.areq()
    Challenge.objects.filter(transaction_id=ares["acsTransID"]).update(method=Challenge.OOB)
    html = acs.first_post(message, ares).content.decode()
    assert "challengeDataEntry" in html and len(sms_file.messages()) == 1
    assert Challenge.objects.get(transaction_id=ares["acsTransID"]).fallback_reason == "no_active_device"


def test_a_challenge_that_timed_out_while_the_page_was_open_hands_back_n(acs, sms_file):
    _, ares, page = acs.start()
    Challenge.objects.filter(transaction_id=ares["acsTransID"]).update(deadline="2000-01-01T00:00:00Z")
    with acs.capture(execute=True):
        assert challenges_time_out() == 1
    _, cres, _ = final_form(acs.act(page, "submit", sms_file.last_code()))
    assert cres["transStatus"] == "N"
    assert Transaction.objects.get(acs_trans_id=ares["acsTransID"]).challenge_cancel == "04"


def test_a_nul_byte_in_any_field_is_a_clean_400(client, db):
    r = client.post("/3ds/v2/challenge", {"creq": "e30", "threeDSSessionData": "a\x00b"})
    assert r.status_code == 400 and b"Traceback" not in r.content
