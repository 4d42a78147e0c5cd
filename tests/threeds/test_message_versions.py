"""messageVersion 2.3.1 (SPEC §3.1): a 2.3.1 AReq is answered in 2.3.1 and every later message of
the transaction (CRes, RReq, Erro, the Stripe import's `version`) keeps it; any other version is
Erro 102. The differences between versions live in emv.VERSION_RULES."""

import pytest

from apps.threeds.card_ranges import ACS_END_PROTOCOL_VERSION, ACS_START_PROTOCOL_VERSION
from apps.threeds.emv import SUPPORTED_VERSIONS, VERSION_RULES
from apps.threeds.models import RiskPolicy, RReqDelivery, Transaction
from tests.factories import make_card
from tests.otp.conftest import policy  # the `acs` fixture needs it
from tests.support.acs import post_areq as post
from tests.support.app_session import AppSession
from tests.threeds.builders import areq
from tests.threeds.conftest import PAN
from tests.threeds.ds_server import rreq_violations
from tests.threeds.test_browser_challenge import acs, ds, final_form
from tests.threeds.test_stripe_import import assert_valid_for_stripe

pytestmark = pytest.mark.django_db
FIXTURES = (acs, ds, policy)  # imported for their names: pytest finds them here
V231 = "2.3.1"
# Elements 2.3.1 added, in formats this ACS checks (apps.threeds.messages.AREQ_ELEMENTS_2_3_1).
NEW_ELEMENTS = {
    "threeDSRequestorSpcSupport": "Y",
    "trustListStatus": "N",
    "payeeOrigin": "https://merchant.example",
    "recurringAmount": "1500",
    "recurringCurrency": "392",
    "recurringExponent": "0",
    "recurringDate": "20301231",
    # Accepted unchecked: read by nothing here.
    "deviceBindingStatus": "11",
    "acquirerCountryCodeSource": "01",
}


@pytest.fixture
def lenient(issuer):
    return RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)


def test_the_table_holds_2_3_1_and_the_card_ranges_advertise_it():
    assert SUPPORTED_VERSIONS == ("2.1.0", "2.2.0", "2.3.1")
    assert (ACS_START_PROTOCOL_VERSION, ACS_END_PROTOCOL_VERSION) == ("2.1.0", "2.3.1")
    # 2.3.1 keeps every 2.2.0 rule.
    v22, v231 = VERSION_RULES["2.2.0"], VERSION_RULES[V231]
    assert (v231.code_lists, v231.javascript_gated_browser) == (v22.code_lists, v22.javascript_gated_browser)
    assert v231.rreq_authentication_method and v231.rreq_acs_rendering_type and v231.areq_2_3_1_elements


# ---------------------------------------------------------------- browser


def test_a_2_3_1_browser_areq_goes_frictionless_in_2_3_1(client, card, lenient):
    message = areq(pan=PAN, version=V231, **NEW_ELEMENTS)
    ares = post(client, message)
    assert (ares["messageType"], ares["messageVersion"], ares["transStatus"]) == ("ARes", V231, "Y"), ares
    assert ares["threeDSServerTransID"] == message["threeDSServerTransID"] and ares["dsTransID"] == message["dsTransID"]
    assert Transaction.objects.get(acs_trans_id=ares["acsTransID"]).message_version == V231


def test_a_2_3_1_browser_challenge_keeps_2_3_1_in_the_cres_and_the_rreq(acs, sms_file, ds):
    message, ares, page = acs.start(messageVersion=V231)
    assert ares["messageVersion"] == V231 and ares["transStatus"] == "C"
    action, cres, _ = final_form(acs.act(page, "submit", sms_file.last_code()))
    assert action == message["notificationURL"]
    assert (cres["messageType"], cres["messageVersion"], cres["transStatus"]) == ("CRes", V231, "Y")
    [rreq] = ds.rreqs
    assert rreq["messageVersion"] == V231 and rreq["transStatus"] == "Y" and rreq["acsTransID"] == ares["acsTransID"]
    assert rreq["authenticationMethod"] == "02"  # a 2.2.0 element, kept in 2.3.1
    assert rreq_violations(rreq) == []


def test_a_2_3_1_browser_areq_still_needs_browser_javascript_enabled(client, card, lenient):
    erro = post(client, areq(pan=PAN, version=V231, browserJavascriptEnabled=None))
    assert (erro["errorCode"], erro["errorDetail"], erro["messageVersion"]) == ("201", "browserJavascriptEnabled", V231)


# ---------------------------------------------------------------- app (JWE)


@pytest.fixture
def app(client, enrolled, sms_file, django_capture_on_commit_callbacks):
    return AppSession(client, around=lambda: django_capture_on_commit_callbacks(execute=True))


def test_a_2_3_1_app_areq_goes_frictionless_in_2_3_1(app):
    ares = app.areq(pan=PAN, version=V231, threeDSRequestorSpcSupport="Y")
    assert (ares["messageVersion"], ares["transStatus"]) == (V231, "Y"), ares


def test_a_2_3_1_app_challenge_keeps_2_3_1_in_the_cres_and_the_rreq(app, sms_file):
    ares = app.areq(pan=PAN, version=V231, threeDSRequestorChallengeInd="04")
    assert (ares["messageVersion"], ares["transStatus"]) == (V231, "C"), ares
    first = app.send()
    assert first["messageVersion"] == V231 and first["challengeCompletionInd"] == "N"
    final = app.send(challengeDataEntry=sms_file.last_code())
    assert (final["messageVersion"], final["transStatus"], final["challengeCompletionInd"]) == (V231, "Y", "Y")
    rreq = RReqDelivery.objects.get(transaction_id=app.acs_trans_id).message
    assert rreq["messageVersion"] == V231 and rreq["sdkTransID"] == app.message["sdkTransID"]
    assert rreq["acsRenderingType"] == {"acsInterface": "01", "acsUiTemplate": "01"}
    assert rreq_violations(rreq) == []


# ---------------------------------------------------------------- Erro


@pytest.mark.parametrize("version", ["2.3.0", "2.4.0", "3.0", "2.0.0", "2.2"])
def test_any_other_version_is_erro_102_with_the_ids_echoed(client, db, version):
    message = areq(pan=PAN, version=version)
    erro = post(client, message)
    assert (erro["messageType"], erro["errorCode"], erro["errorDetail"]) == ("Erro", "102", "messageVersion")
    assert erro["threeDSServerTransID"] == message["threeDSServerTransID"] and erro["dsTransID"] == message["dsTransID"]
    # The Erro is written in a version this ACS speaks: the highest.
    assert erro["messageVersion"] == SUPPORTED_VERSIONS[-1]
    assert not Transaction.objects.exists()


def test_a_2_3_1_element_in_a_bad_format_is_203_and_is_ignored_before_2_3_1(client, card, lenient):
    erro = post(client, areq(pan=PAN, version=V231, threeDSRequestorSpcSupport="N", recurringDate="20301301"))
    assert (erro["errorCode"], erro["errorDetail"], erro["messageVersion"]) == ("203", "threeDSRequestorSpcSupport,recurringDate", V231)
    # In 2.2.0 these are not elements of the message: unknown, so ignored as before.
    ares = post(client, areq(pan=PAN, version="2.2.0", threeDSRequestorSpcSupport="N", recurringDate="20301301"))
    assert (ares["messageType"], ares["messageVersion"]) == ("ARes", "2.2.0")


# ---------------------------------------------------------------- Stripe import


def test_the_stripe_import_version_is_the_transactions(client, api, cardholder, lenient):
    make_card(cardholder=cardholder, pan=PAN)
    ares = post(client, areq(pan=PAN, version=V231))
    r = api.get(f"/api/v1/transactions/{ares['acsTransID']}/stripe-import")
    assert r.status_code == 200
    assert r.json()["payment_method_options"]["card"]["three_d_secure"]["version"] == V231
    assert_valid_for_stripe(r.json())

