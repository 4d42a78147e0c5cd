"""One bank's worth of what the admin's operations pages show: a cardholder with a phone, a card,
a device, transactions (one with a challenge stuck past its timeout) and failed SMS and webhook
deliveries. Rows are written straight into the tables, as the flows leave them; the tries and
retries themselves are tested with the delivery engine in tests/webhooks and tests/sms."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR
from apps.cards.models import Card, Cardholder, Phone
from apps.devices.models import Device
from apps.sms.models import SmsAttempt, SmsDelivery
from apps.threeds.models import Challenge, Transaction
from apps.webhooks import services as webhook_services
from apps.webhooks.models import KIND_3DS_NOTIFICATION, WebhookDelivery
from tests.factories import CardholderFactory, client_for, make_card, make_phone, make_staff, make_superuser, new_pan
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)

# What must never be on a page: the OTP of the failed SMS below (its body is encrypted anyway).
OTP = "902114"


@dataclass
class Bank:
    issuer: object
    cardholder: Cardholder
    phone: Phone
    card: Card
    pan: str
    device: Device
    tx: Transaction
    stuck: Transaction
    sms: SmsDelivery
    webhook: WebhookDelivery


def make_tx(issuer, card, **fields) -> Transaction:
    values = {
        "three_ds_server_trans_id": uuid.uuid4(), "ds_trans_id": uuid.uuid4(), "message_version": "2.2.0",
        "device_channel": "02", "message_category": "01", "pan_last4": card.last4, "pan_fingerprint": "f" * 64,
        "network": "visa", "merchant_name": "Tokyo Books", "purchase_amount": 1500, "purchase_currency": "392",
        "purchase_exponent": 0, "merchant_country_code": "392", "ares_trans_status": "Y", "trans_status": "Y",
    }
    return Transaction.objects.create(issuer=issuer, card=card, **{**values, **fields})


def make_bank(issuer, tag: str, number: str) -> Bank:
    cardholder = CardholderFactory(issuer=issuer, external_id=f"cust-{tag}", name=f"Holder {tag}")
    phone = make_phone(cardholder, number)
    pan = new_pan()
    card = make_card(cardholder=cardholder, pan=pan, card_id=f"card-{tag}")
    device = Device.objects.create(
        issuer=issuer, cardholder=cardholder, name=f"Phone of {tag}", credential_id=uuid.uuid4().bytes, public_key=b"k",
        attestation_format="none", push_platform="fcm", token_hash=uuid.uuid4().hex * 2,
    )
    tx = make_tx(issuer, card)
    stuck = make_tx(issuer, card, ares_trans_status="C", trans_status="", merchant_name="Osaka Games")
    past = timezone.now() - timedelta(hours=1)
    Challenge.objects.create(
        transaction=stuck, method=Challenge.SMS_OTP, state=Challenge.IN_PROGRESS, first_creq_deadline=past, deadline=past,
    )
    sms = SmsDelivery.objects.create(
        issuer=issuer, acs_trans_id=stuck.acs_trans_id, to=str(phone.number), masked_to=phone.masked,
        status=SmsDelivery.FAILED, error_code="30003", tries=1,
    )
    sms.seal_body(f"Your code is {OTP}")
    sms.save()
    SmsAttempt.objects.create(
        delivery=sms, provider_role="primary", provider="twilio", try_number=1, number=1, state=SmsAttempt.FAILED_PERMANENT,
        started_at=timezone.now(), error_code="30003", callback_token=uuid.uuid4().hex,
    )
    # Recorded as the flow records it, then failed: no try is made in this process.
    webhook = webhook_services.webhook_delivery_create(
        issuer=issuer, kind=KIND_3DS_NOTIFICATION, url="http://127.0.0.1:9/notify",
        payload={"acsTransID": str(stuck.acs_trans_id), "transStatus": "N"}, acs_trans_id=stuck.acs_trans_id,
    )
    WebhookDelivery.objects.filter(pk=webhook.pk).update(
        status=WebhookDelivery.FAILED, tries=webhook.max_tries, next_attempt_at=None, finished_at=timezone.now(),
        last_error="HTTP 500",
    )
    webhook.refresh_from_db()
    return Bank(issuer, cardholder, phone, card, pan, device, tx, stuck, sms, webhook)


@pytest.fixture
def ours(issuer):
    return make_bank(issuer, "ours", "+819012345678")


@pytest.fixture
def theirs(other_issuer):
    return make_bank(other_issuer, "theirs", "+819087654321")


@pytest.fixture
def clients(ours, theirs):
    """Logged-in clients per role: our issuer's roles, another issuer's admin, the superuser."""
    return {
        "issuer_admin": client_for(make_staff(ours.issuer, ISSUER_ADMIN)),
        "operator": client_for(make_staff(ours.issuer, OPERATOR)),
        "analyst": client_for(make_staff(ours.issuer, ANALYST)),
        "other_issuer": client_for(make_staff(theirs.issuer, ISSUER_ADMIN)),
        "superuser": client_for(make_superuser()),
    }
