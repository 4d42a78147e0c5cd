"""Issuer delivery mode: the code goes to the issuer's backend in a signed DeliverOTP call."""

import json

import pytest

from apps.cards.models import Phone
from apps.otp.services import otp_policy_create_default, otp_session_start, otp_verify
from apps.webhooks.models import WebhookDelivery
from tests.factories import CardholderFactory, make_card
from tests.otp.conftest import DETAILS
from tests.webhooks.conftest import receiver, webhook_issuer  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def issuer_mode(webhook_issuer, in_process_tasks):
    otp_policy_create_default(issuer=webhook_issuer, delivery_mode="issuer")
    cardholder = CardholderFactory(issuer=webhook_issuer, external_id="consumer-42", locale="fr")
    phone = Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True)
    return make_card(cardholder=cardholder, card_id="card-42"), phone


def test_the_issuer_receives_a_signed_deliver_otp_and_the_code_verifies(issuer_mode, receiver, django_capture_on_commit_callbacks, sms_file):
    card, phone = issuer_mode
    with django_capture_on_commit_callbacks(execute=True):
        session = otp_session_start(card=card, phone=phone, locale="fr", transaction_details=DETAILS,
                                    acs_trans_id="8a5c2a40-9a3e-4a53-8d5e-5f8d7a9b6c11")
    [request] = receiver.received
    assert request.signature_ok and request.path == "/deliver-otp"
    body = json.loads(request.body)
    assert set(body) == {"operationId", "issuerId", "cardId", "consumerId", "acsTransId", "otp", "otpExpiresAt", "locale",
                         "maskedPhone", "threeDSDetails"}
    assert (body["cardId"], body["consumerId"], body["locale"], body["maskedPhone"]) == ("card-42", "consumer-42", "fr", "+81 ••• •••• 5678")
    assert body["acsTransId"] == "8a5c2a40-9a3e-4a53-8d5e-5f8d7a9b6c11"
    assert body["threeDSDetails"] == {"merchantName": "Tokyo Books", "purchaseAmount": "1500", "purchaseCurrency": "392", "purchaseExponent": "0"}
    assert body["otpExpiresAt"].endswith("Z")
    assert sms_file.messages() == []  # the service sent no SMS itself
    delivery = WebhookDelivery.objects.get()
    assert delivery.display_payload["otp"] == "[REDACTED]"
    assert delivery.payload_blob is None  # wiped once delivered
    assert otp_verify(session_id=session.pk, code=body["otp"]).verified
