"""Stripe result import (SPEC §3.7): the exact `payment_method_options` a merchant passes to Stripe,
valid against Stripe's parameters (tests/threeds/stripe_schema.json), as JSON and as form lines."""

import json
import re
import uuid
from pathlib import Path

import jsonschema
import pytest
from django.utils import timezone

from apps.cards.models import Phone
from apps.threeds.models import Challenge, RiskPolicy, Transaction
from apps.threeds.results import CB_AVALGO
from apps.threeds.stripe_import import stripe_form_lines
from tests.factories import CardholderFactory, CardProductFactory, make_card
from tests.threeds.builders import areq

pytestmark = pytest.mark.django_db

SCHEMA = json.loads((Path(__file__).parent / "stripe_schema.json").read_text())
VISA_PAN = "4111111111111111"
MC_PAN = "5555555555554444"
CB_VISA_PAN = "4000002500001001"  # Stripe's Cartes Bancaires / Visa test card
CB_MC_PAN = "5555552500001001"  # Stripe's Cartes Bancaires / Mastercard test card


def assert_valid_for_stripe(document: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document), key=str)
    assert not errors, [e.message for e in errors]


def url(acs_trans_id, fmt: str | None = None) -> str:
    return f"/api/v1/transactions/{acs_trans_id}/stripe-import" + (f"?format={fmt}" if fmt else "")


@pytest.fixture
def policy(issuer):
    """Ordinary purchases go frictionless; the requestor's TRA (indicator 05) is granted up to ¥100,000."""
    return RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, tra_max_amounts={"392": "100000"})


@pytest.fixture
def authenticate(client, policy):
    def run(pan: str, **elements) -> Transaction:
        ares = client.post("/3ds/v2/areq", areq(pan=pan, **elements), content_type="application/json").json()
        return Transaction.objects.get(acs_trans_id=ares["acsTransID"])

    return run


def cb_card(cardholder, pan: str, co_badge: str):
    product = CardProductFactory(issuer=cardholder.issuer, network="cartes_bancaires", co_badge=co_badge)
    return make_card(cardholder=cardholder, pan=pan, product=product)


def test_visa_frictionless_y(api, cardholder, authenticate):
    make_card(cardholder=cardholder, pan=VISA_PAN)
    tx = authenticate(VISA_PAN)

    r = api.get(url(tx.acs_trans_id))

    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    assert r.json() == {
        "payment_method_options": {
            "card": {
                "three_d_secure": {
                    "version": "2.2.0",
                    "electronic_commerce_indicator": "05",
                    "cryptogram": tx.authentication_value,
                    "transaction_id": str(tx.ds_trans_id),
                    "ares_trans_status": "Y",
                    "requestor_challenge_indicator": "01",
                    "exemption_indicator": "none",
                }
            }
        }
    }
    assert len(tx.authentication_value) == 28
    assert_valid_for_stripe(r.json())


def test_the_form_lines_are_those_of_a_stripe_call(api, cardholder, authenticate):
    make_card(cardholder=cardholder, pan=VISA_PAN)
    tx = authenticate(VISA_PAN, messageVersion="2.1.0")

    r = api.get(url(tx.acs_trans_id, "form"))

    assert r.status_code == 200 and r["Content-Type"] == "text/plain; charset=utf-8"
    prefix = "payment_method_options[card][three_d_secure]"
    assert r.content.decode().splitlines() == [
        f"{prefix}[version]=2.1.0",
        f"{prefix}[electronic_commerce_indicator]=05",
        f"{prefix}[cryptogram]={tx.authentication_value}",
        f"{prefix}[transaction_id]={tx.ds_trans_id}",
        f"{prefix}[ares_trans_status]=Y",
        f"{prefix}[requestor_challenge_indicator]=01",
        f"{prefix}[exemption_indicator]=none",
    ]


def test_mastercard_y(api, cardholder, authenticate):
    make_card(cardholder=cardholder, pan=MC_PAN)
    tx = authenticate(MC_PAN, threeDSRequestorChallengeInd=None)

    body = api.get(url(tx.acs_trans_id)).json()

    three_d_secure = body["payment_method_options"]["card"]["three_d_secure"]
    assert three_d_secure["electronic_commerce_indicator"] == "02"
    assert "requestor_challenge_indicator" not in three_d_secure  # not in the AReq
    assert "network" not in body["payment_method_options"]["card"] and "network_options" not in three_d_secure
    assert_valid_for_stripe(body)


def test_cartes_bancaires_with_a_low_risk_exemption(api, cardholder, authenticate):
    cb_card(cardholder, CB_VISA_PAN, "visa")
    tx = authenticate(CB_VISA_PAN, threeDSRequestorChallengeInd="05")
    assert tx.exemption == "low_risk"

    r = api.get(url(tx.acs_trans_id))

    card = r.json()["payment_method_options"]["card"]
    assert card["network"] == "cartes_bancaires"
    three_d_secure = card["three_d_secure"]
    assert three_d_secure["exemption_indicator"] == "low_risk"
    assert three_d_secure["requestor_challenge_indicator"] == "05"
    assert three_d_secure["network_options"] == {
        "cartes_bancaires": {"cb_avalgo": CB_AVALGO, "cb_score": tx.risk_score, "cb_exemption": "BAAA"}
    }
    assert three_d_secure["electronic_commerce_indicator"] == "05"  # the co-badge's (Visa) table
    assert_valid_for_stripe(r.json())
    # What Stripe receives is what the ARes told the DS.
    extensions = {e["name"]: e["data"] for e in tx.ares["messageExtension"]}
    assert extensions["CB-EXEMPTION"]["exemption"] == "BAAA" and extensions["CB-SCORE"]["score"] == tx.risk_score


def test_cartes_bancaires_without_an_exemption_in_form_lines(api, cardholder, authenticate):
    cb_card(cardholder, CB_MC_PAN, "mastercard")
    tx = authenticate(CB_MC_PAN)

    json_body = api.get(url(tx.acs_trans_id)).json()
    lines = api.get(url(tx.acs_trans_id, "form")).content.decode().splitlines()

    three_d_secure = json_body["payment_method_options"]["card"]["three_d_secure"]
    assert three_d_secure["exemption_indicator"] == "none"
    assert three_d_secure["network_options"]["cartes_bancaires"]["cb_exemption"] == "AAAA"
    assert three_d_secure["electronic_commerce_indicator"] == "02"  # the co-badge's (Mastercard) table
    assert_valid_for_stripe(json_body)
    options = "payment_method_options[card][three_d_secure][network_options][cartes_bancaires]"
    assert lines[0] == "payment_method_options[card][network]=cartes_bancaires"
    assert f"{options}[cb_avalgo]={CB_AVALGO}" in lines
    assert f"{options}[cb_score]={tx.risk_score}" in lines
    assert f"{options}[cb_exemption]=AAAA" in lines
    assert parse_form_lines(lines) == json_body  # the two formats say the same


def parse_form_lines(lines: list[str]) -> dict:
    """What Stripe makes of the form parameters (integers aside, which forms carry as text)."""
    document: dict = {}
    for line in lines:
        key, _, value = line.partition("=")
        path = [key.split("[", 1)[0], *re.findall(r"\[([^\]]+)\]", key)]
        node = document
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = int(value) if path[-1] == "cb_score" else value
    return document


@pytest.mark.parametrize("exemption, bitmap, indicator", [("low_risk", "BAAA", "low_risk"), ("", "AAAA", "none")])
def test_exemption_indicator_and_cb_exemption_never_contradict(api, cardholder, authenticate, exemption, bitmap, indicator):
    cb_card(cardholder, CB_VISA_PAN, "visa")
    tx = authenticate(CB_VISA_PAN)
    Transaction.objects.filter(pk=tx.pk).update(exemption=exemption)

    three_d_secure = api.get(url(tx.acs_trans_id)).json()["payment_method_options"]["card"]["three_d_secure"]

    assert (three_d_secure["exemption_indicator"], three_d_secure["network_options"]["cartes_bancaires"]["cb_exemption"]) == (
        indicator, bitmap,
    )


def test_an_attempt_result_a_imports_with_eci_06(api, cardholder, authenticate, policy):
    make_card(cardholder=cardholder, pan=VISA_PAN)  # no phone, no device: no challenge method
    RiskPolicy.objects.filter(pk=policy.pk).update(no_method_outcome="A")
    tx = authenticate(VISA_PAN, threeDSRequestorChallengeInd="04")
    assert tx.trans_status == "A"

    body = api.get(url(tx.acs_trans_id)).json()

    three_d_secure = body["payment_method_options"]["card"]["three_d_secure"]
    assert (three_d_secure["ares_trans_status"], three_d_secure["electronic_commerce_indicator"]) == ("A", "06")
    assert_valid_for_stripe(body)


def test_y_after_a_challenge_says_the_ares_was_c(api, cardholder, authenticate, client):
    card = make_card(cardholder=cardholder, pan=VISA_PAN)
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True)
    tx = authenticate(VISA_PAN, threeDSRequestorChallengeInd="04")
    assert tx.ares_trans_status == "C"
    # The end of the challenge as the challenge flow records it.
    from apps.threeds.results import authentication_value, eci_for

    value, key_id = authentication_value(
        issuer_id=card.issuer.issuer_id, pan=VISA_PAN, ds_trans_id=tx.ds_trans_id, acs_trans_id=tx.acs_trans_id,
        purchase_amount=tx.purchase_amount, purchase_currency=tx.purchase_currency, trans_status="Y",
    )
    Transaction.objects.filter(pk=tx.pk).update(
        trans_status="Y", eci=eci_for(network="visa", co_badge="", trans_status="Y"), authentication_value=value,
        authentication_value_key_id=key_id, finished_at=timezone.now(),
    )
    Challenge.objects.filter(pk=tx.pk).update(state=Challenge.SUCCEEDED)

    body = api.get(url(tx.acs_trans_id)).json()

    three_d_secure = body["payment_method_options"]["card"]["three_d_secure"]
    assert (three_d_secure["ares_trans_status"], three_d_secure["requestor_challenge_indicator"]) == ("C", "04")
    assert three_d_secure["cryptogram"] == value
    assert_valid_for_stripe(body)


# ---------------------------------------------------------------- refusals


def test_a_declined_transaction_is_409_with_the_reason(api, cardholder, authenticate):
    make_card(cardholder=cardholder, pan=VISA_PAN, status="lost_stolen")
    tx = authenticate(VISA_PAN)

    for fmt in (None, "form"):
        r = api.get(url(tx.acs_trans_id, fmt))
        assert r.status_code == 409 and r["Content-Type"] == "application/json"
        error = r.json()["error"]
        assert error["code"] == "transaction_not_authenticated"
        assert "ended N (transStatusReason 10)" in error["message"]


def test_a_challenge_still_running_is_409(api, cardholder, authenticate):
    make_card(cardholder=cardholder, pan=VISA_PAN)
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True)
    tx = authenticate(VISA_PAN, threeDSRequestorChallengeInd="04")

    r = api.get(url(tx.acs_trans_id))

    assert r.status_code == 409 and r.json()["error"]["code"] == "transaction_in_progress"


def test_another_issuers_transaction_is_404(other_api, cardholder, authenticate):
    make_card(cardholder=cardholder, pan=VISA_PAN)
    tx = authenticate(VISA_PAN)

    for fmt in (None, "form"):
        r = other_api.get(url(tx.acs_trans_id, fmt))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("acs_trans_id", [uuid.uuid4(), "not-a-uuid"])
def test_an_unknown_transaction_is_404(api, acs_trans_id):
    assert api.get(url(acs_trans_id)).status_code == 404


@pytest.mark.parametrize("query", ["format=xml", "format=json&format=form", "expand=1"])
def test_a_bad_query_is_400(api, cardholder, authenticate, query):
    make_card(cardholder=cardholder, pan=VISA_PAN)
    tx = authenticate(VISA_PAN)

    r = api.get(f"/api/v1/transactions/{tx.acs_trans_id}/stripe-import?{query}")

    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"


def test_it_needs_an_api_key(anon_api):
    r = anon_api.get(url(uuid.uuid4()))
    assert r.status_code == 401 and "WWW-Authenticate" in r


def test_form_lines_keep_the_cryptogram_as_stripe_documents_it():
    options = {"payment_method_options": {"card": {"three_d_secure": {"version": "2.2.0", "cryptogram": "CJSJbzXT6TRQlvZDX+ZdOG4QriE="}}}}
    assert stripe_form_lines(options) == (
        "payment_method_options[card][three_d_secure][version]=2.2.0\n"
        "payment_method_options[card][three_d_secure][cryptogram]=CJSJbzXT6TRQlvZDX+ZdOG4QriE=\n"
    )


def test_the_schema_refuses_what_stripe_refuses():
    good = {"payment_method_options": {"card": {"three_d_secure": {"version": "2.2.0", "electronic_commerce_indicator": "05"}}}}
    assert_valid_for_stripe(good)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    bad = [
        {"payment_method_options": {"card": {"three_d_secure": {"version": "2.0.0"}}}},
        {"payment_method_options": {"card": {"three_d_secure": {"version": "2.2.0", "electronic_commerce_indicator": "00"}}}},
        {"payment_method_options": {"card": {"three_d_secure": {"version": "2.2.0", "exemption_indicator": "tra"}}}},
        {"payment_method_options": {"card": {"three_d_secure": {"version": "2.2.0", "requestor_challenge_indicator": "4"}}}},
        {"payment_method_options": {"card": {"three_d_secure": {"version": "2.2.0", "eci": "05"}}}},
        {"payment_method_options": {"card": {"network": "cartes_bancaires", "three_d_secure": {
            "version": "2.2.0", "network_options": {"cartes_bancaires": {"cb_score": 12}}}}}},
        {"payment_method_options": {"card": {"network": "cartes_bancaires", "three_d_secure": {
            "version": "2.2.0", "network_options": {"cartes_bancaires": {"cb_avalgo": "A", "cb_score": 100}}}}}},
        {"payment_method_options": {"card": {"network": "cartes_bancaires", "three_d_secure": {
            "version": "2.2.0", "network_options": {"cartes_bancaires": {"cb_avalgo": "A", "cb_exemption": "BAAAA"}}}}}},
        {"payment_method_options": {"card": {"three_d_secure": {
            "version": "2.2.0", "network_options": {"cartes_bancaires": {"cb_avalgo": "A"}}}}}},  # no network
    ]
    assert all(list(validator.iter_errors(document)) for document in bad)


def test_each_transaction_imports_its_own_values(api, issuer, authenticate):
    holder = CardholderFactory(issuer=issuer)
    make_card(cardholder=holder, pan=VISA_PAN)
    make_card(cardholder=holder, pan=MC_PAN)
    first, second = authenticate(VISA_PAN), authenticate(MC_PAN)

    a = api.get(url(first.acs_trans_id)).json()["payment_method_options"]["card"]["three_d_secure"]
    b = api.get(url(second.acs_trans_id)).json()["payment_method_options"]["card"]["three_d_secure"]

    assert (a["transaction_id"], b["transaction_id"]) == (str(first.ds_trans_id), str(second.ds_trans_id))
    assert a["cryptogram"] != b["cryptogram"]
