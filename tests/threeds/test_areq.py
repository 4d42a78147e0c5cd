import base64

import pytest

from apps.cards.models import Card, Phone
from apps.threeds.models import Challenge, RiskPolicy, Transaction
from tests.factories import CardProductFactory, make_card
from tests.support.acs import post_areq as post
from tests.threeds.builders import areq

pytestmark = pytest.mark.django_db
PAN = "4111111111111111"


@pytest.fixture
def lenient(issuer):
    """A policy under which an ordinary purchase goes frictionless."""
    return RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)


def test_a_low_risk_purchase_is_frictionless_with_eci_and_authentication_value(client, card, lenient):
    message = areq(pan=PAN)
    ares = post(client, message)
    assert ares["messageType"] == "ARes" and ares["messageVersion"] == "2.2.0"
    assert ares["threeDSServerTransID"] == message["threeDSServerTransID"] and ares["dsTransID"] == message["dsTransID"]
    assert ares["transStatus"] == "Y" and ares["eci"] == "05"
    assert len(ares["authenticationValue"]) == 28 and len(base64.b64decode(ares["authenticationValue"])) == 20
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert tx.risk_score < lenient.challenge_threshold and tx.risk_rules[0]["rule"] == "base"
    assert PAN not in str(tx.areq) and tx.pan_last4 == "1111"


def test_mastercard_eci(client, cardholder, lenient):
    make_card(cardholder=cardholder, pan="5555555555554444")
    assert post(client, areq(pan="5555555555554444"))["eci"] == "02"


def test_an_unknown_pan_is_n_08(client, db):
    ares = post(client, areq(pan="4000000000000002"))
    assert (ares["transStatus"], ares["transStatusReason"]) == ("N", "08")


@pytest.mark.parametrize("status, reason", [("lost_stolen", "10"), ("suspended", "12"), ("closed", "12")])
def test_card_status_outcomes(client, cardholder, status, reason):
    make_card(cardholder=cardholder, pan=PAN, status=status)
    ares = post(client, areq(pan=PAN))
    assert (ares["transStatus"], ares["transStatusReason"]) == ("N", reason)


def test_an_expired_card_is_n_05(client, card):
    Card.objects.filter(pk=card.pk).update(expiry_year=2020)
    assert post(client, areq(pan=PAN))["transStatusReason"] == "05"


def test_velocity_is_n_04(client, card, issuer):
    RiskPolicy.objects.create(issuer=issuer, velocity_max_per_hour=2, velocity_warn_per_hour=1, new_merchant_weight=0)
    post(client, areq(pan=PAN))
    post(client, areq(pan=PAN))
    ares = post(client, areq(pan=PAN))
    assert (ares["transStatus"], ares["transStatusReason"]) == ("N", "04")


def test_a_mandated_challenge_with_a_phone_is_c(client, card, phone, lenient):
    ares = post(client, areq(pan=PAN, threeDSRequestorChallengeInd="04"))
    assert ares["transStatus"] == "C" and ares["acsChallengeMandated"] == "Y" and ares["authenticationType"] == "02"
    assert ares["acsURL"].endswith("/3ds/v2/challenge")
    challenge = Challenge.objects.get(transaction_id=ares["acsTransID"])
    assert challenge.method == "sms_otp" and challenge.state == "awaiting_creq" and challenge.phone == phone


def test_an_amount_over_the_threshold_is_challenged(client, card, phone, issuer):
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, amount_thresholds={"392": "10000"})
    assert post(client, areq(pan=PAN, purchaseAmount="9000"))["transStatus"] == "Y"
    ares = post(client, areq(pan=PAN, purchaseAmount="10001"))
    assert ares["transStatus"] == "C"
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert "amount_over_threshold" in [r["rule"] for r in tx.risk_rules]


def test_the_threshold_honours_the_exponent(client, card, phone, issuer):
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, amount_thresholds={"978": "100.00"})
    assert post(client, areq(pan=PAN, purchaseAmount="10000", purchaseCurrency="978", purchaseExponent="2"))["transStatus"] == "Y"
    assert post(client, areq(pan=PAN, purchaseAmount="10001", purchaseCurrency="978", purchaseExponent="2"))["transStatus"] == "C"


def test_a_challenge_without_any_method_is_n_13_by_default(client, card, lenient):
    ares = post(client, areq(pan=PAN, threeDSRequestorChallengeInd="04"))
    assert (ares["transStatus"], ares["transStatusReason"]) == ("N", "13")


def test_a_challenge_without_any_method_can_be_a_by_policy(client, card, issuer):
    RiskPolicy.objects.create(issuer=issuer, no_method_outcome="A")
    ares = post(client, areq(pan=PAN, threeDSRequestorChallengeInd="04"))
    assert ares["transStatus"] == "A" and ares["eci"] == "06" and len(ares["authenticationValue"]) == 28


def test_an_unverified_phone_is_no_method(client, card, cardholder, lenient):
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=False)
    assert post(client, areq(pan=PAN, threeDSRequestorChallengeInd="04"))["transStatusReason"] == "13"


def test_a_challenge_on_3ri_is_n_21(client, card, phone, lenient):
    ares = post(client, areq(pan=PAN, channel="03", threeDSRequestorChallengeInd="04"))
    assert (ares["transStatus"], ares["transStatusReason"]) == ("N", "21")


def test_a_non_payment_is_challenged(client, card, phone, lenient):
    assert post(client, areq(pan=PAN, category="02"))["transStatus"] == "C"


def test_tra_exemption_within_limits_goes_frictionless(client, card, phone, issuer):
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, amount_thresholds={"392": "1000"}, tra_max_amounts={"392": "2000"})
    ares = post(client, areq(pan=PAN, purchaseAmount="1500", threeDSRequestorChallengeInd="05"))
    assert ares["transStatus"] == "Y"
    assert Transaction.objects.get(acs_trans_id=ares["acsTransID"]).exemption == "low_risk"


def test_the_app_channel_gets_rendering_type_and_the_creq_url(client, card, phone, lenient):
    message = areq(pan=PAN, channel="01", threeDSRequestorChallengeInd="04")
    ares = post(client, message)
    assert ares["transStatus"] == "C" and ares["sdkTransID"] == message["sdkTransID"]
    assert ares["acsURL"].endswith("/3ds/v2/creq") and ares["acsSignedContent"].count(".") == 2
    assert ares["acsRenderingType"] == {"acsInterface": "01", "acsUiTemplate": "01"}


def test_a_duplicate_areq_gets_the_same_ares_and_no_second_challenge(client, card, phone, lenient):
    message = areq(pan=PAN, threeDSRequestorChallengeInd="04")
    first, second = post(client, message), post(client, message)
    assert first == second
    assert Transaction.objects.count() == 1 and Challenge.objects.count() == 1


def test_cartes_bancaires_aresponse_carries_cb_extensions(client, issuer, cardholder, lenient):
    product = CardProductFactory(issuer=issuer, network="cartes_bancaires", co_badge="mastercard")
    product.bin_ranges.create(start="555555", end="555555")
    make_card(cardholder=cardholder, pan="5555555555554444")
    ares = post(client, areq(pan="5555555555554444"))
    assert ares["eci"] == "02"  # the co-badge's table
    names = {e["name"] for e in ares["messageExtension"]}
    assert names == {"CB-AVALGO", "CB-SCORE", "CB-EXEMPTION"}


# ---------------------------------------------------------------- Erro


@pytest.mark.parametrize(
    "body, code",
    [
        ("not json", "101"),
        ("[1]", "101"),
        ('{"messageType": "CReq"}', "101"),
    ],
)
def test_unreadable_messages_are_erro_101(client, body, code):
    r = client.post("/3ds/v2/areq", body, content_type="application/json")
    assert r.status_code == 200 and r.json()["errorCode"] == code and r.json()["messageType"] == "Erro"


def test_an_unsupported_version_is_102(client, db):
    assert post(client, areq(version="2.4.0"))["errorCode"] == "102"


@pytest.mark.parametrize("element", ["acctNumber", "dsTransID", "notificationURL", "purchaseAmount", "browserUserAgent", "dsURL"])
def test_a_missing_element_is_201_naming_it(client, element, db):
    message = areq(**{element: None})
    erro_ = post(client, message)
    assert erro_["errorCode"] == "201" and element in erro_["errorDetail"]
    assert erro_["errorComponent"] == "A"
    if element != "dsTransID":
        assert erro_["dsTransID"] == message["dsTransID"]


@pytest.mark.parametrize(
    "element, value",
    [("acctNumber", "41111111"), ("purchaseCurrency", "JPY"), ("purchaseExponent", "12"), ("purchaseDate", "20261399000000"),
     ("merchantName", "x" * 41), ("threeDSServerTransID", "not-a-uuid"), ("deviceChannel", "09"), ("notificationURL", "javascript:alert(1)"),
     ("purchaseAmount", 1500), ("browserJavascriptEnabled", "true")],
)
def test_a_malformed_element_is_203_naming_it(client, element, value, db):
    erro_ = post(client, areq(**{element: value}))
    assert erro_["errorCode"] == "203" and element in erro_["errorDetail"]


def test_the_app_channel_requires_its_sdk_elements(client, db):
    erro_ = post(client, areq(channel="01", sdkTransID=None, deviceRenderOptions=None))
    assert erro_["errorCode"] == "201" and "sdkTransID" in erro_["errorDetail"] and "deviceRenderOptions" in erro_["errorDetail"]


def test_challenge_indicator_values_depend_on_the_version(client, card, lenient):
    assert post(client, areq(pan=PAN, version="2.1.0", threeDSRequestorChallengeInd="05"))["errorCode"] == "203"


def test_a_wrong_content_type_is_erro_101(client, db):
    r = client.post("/3ds/v2/areq", "a=b", content_type="application/x-www-form-urlencoded")
    assert r.json()["errorCode"] == "101"


def test_a_nul_anywhere_is_203(client, card, lenient):
    erro_ = post(client, areq(pan=PAN, purchaseInstalData=None, messageExtension=[{"name": "x\x00"}]))
    assert erro_["errorCode"] == "203" and "messageExtension" in erro_["errorDetail"]


def test_absurd_nesting_is_203_not_a_crash(client, card, lenient):
    deep = []
    for _ in range(700):
        deep = [deep]
    erro_ = post(client, areq(pan=PAN, messageExtension=deep))
    assert erro_["errorCode"] == "203" and "messageExtension" in erro_["errorDetail"]
