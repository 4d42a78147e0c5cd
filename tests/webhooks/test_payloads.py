"""DeliverOTP's shape (SPEC §5.4), what is stored of a payload, and how answers are classified."""

import json
from datetime import datetime, timedelta, timezone as dt_timezone
from email.utils import format_datetime

import pytest
from cryptography.exceptions import InvalidTag
from django.test import override_settings
from django.utils import timezone

from apps.core.crypto import Sealed, unseal
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.services import (
    OK,
    PERMANENT,
    TRANSIENT,
    classify_status,
    deliver_otp_enqueue,
    deliver_otp_payload,
    retry_after_seconds,
    webhook_delivery_create,
)
from tests.factories import IssuerFactory
from tests.webhooks.conftest import make_otp_payload, new_otp

JST = dt_timezone(timedelta(hours=9))


def test_deliver_otp_has_exactly_the_shape_of_the_spec():
    payload = deliver_otp_payload(
        operation_id="op-1", issuer_id="ISS0000001", card_id="card-1", consumer_id="cust-1",
        acs_trans_id="8a880dc0-d2d2-4067-bcb1-b08d1690b26e", otp="482913",
        otp_expires_at=datetime(2026, 3, 1, 9, 5, 0, tzinfo=JST), locale="ja", masked_phone="+81 ** **** 5678",
        merchant_name="Tokyo Mart", purchase_amount="12345", purchase_currency="392", purchase_exponent="0",
    )
    assert payload == {
        "operationId": "op-1",
        "issuerId": "ISS0000001",
        "cardId": "card-1",
        "consumerId": "cust-1",
        "acsTransId": "8a880dc0-d2d2-4067-bcb1-b08d1690b26e",
        "otp": "482913",
        "otpExpiresAt": "2026-03-01T00:05:00.000Z",
        "locale": "ja",
        "maskedPhone": "+81 ** **** 5678",
        "threeDSDetails": {
            "merchantName": "Tokyo Mart",
            "purchaseAmount": "12345",
            "purchaseCurrency": "392",
            "purchaseExponent": "0",
        },
    }


def test_deliver_otp_refuses_a_naive_expiry():
    with pytest.raises(ValueError):
        deliver_otp_payload(
            operation_id="op", issuer_id="ISS0000001", card_id="c", consumer_id="u", acs_trans_id="a", otp="482913",
            otp_expires_at=datetime(2026, 3, 1, 9, 5), locale="en", masked_phone="", merchant_name="m",
            purchase_amount="1", purchase_currency="392", purchase_exponent="0",
        )


@pytest.mark.django_db
def test_the_otp_is_kept_only_encrypted_and_shown_redacted(django_capture_on_commit_callbacks):
    issuer = IssuerFactory(deliver_otp_url="https://issuer.example/otp")
    otp = new_otp()
    payload = make_otp_payload(issuer, otp=otp)
    with django_capture_on_commit_callbacks() as callbacks:
        delivery = deliver_otp_enqueue(issuer=issuer, payload=payload, acs_trans_id=payload["acsTransId"])
    assert len(callbacks) == 1  # sent after commit, never before
    delivery.refresh_from_db()
    assert delivery.kind == "deliver_otp" and delivery.url == issuer.deliver_otp_url
    assert str(delivery.acs_trans_id) == payload["acsTransId"]
    assert delivery.display_payload == {**payload, "otp": "[REDACTED]"}
    assert delivery.has_secrets
    assert otp.encode() not in bytes(delivery.payload_blob)
    envelope = json.loads(unseal(Sealed(delivery.payload_key_id, bytes(delivery.payload_blob)), context=f"webhook:{delivery.pk}"))
    assert json.loads(envelope["body"]) == payload
    # Bound to its row: the blob copied onto another delivery does not open.
    with pytest.raises(InvalidTag):
        unseal(Sealed(delivery.payload_key_id, bytes(delivery.payload_blob)), context=f"webhook:{delivery.pk + 1}")


@pytest.mark.django_db
def test_declared_secret_values_are_redacted_wherever_they_appear():
    issuer = IssuerFactory()
    payload = {
        "message": "Your code is 91827364, do not share", "nested": [{"value": "91827364"}], "otp": "55554444", "n": 91827364,
    }
    delivery = webhook_delivery_create(
        issuer=issuer, kind="test", url="https://x.example", payload=payload, secret_values=["91827364"]
    )
    assert delivery.display_payload == {
        "message": "Your code is [REDACTED], do not share",
        "nested": [{"value": "[REDACTED]"}],
        "otp": "[REDACTED]",  # by its key, even undeclared
        "n": "[REDACTED]",
    }


@pytest.mark.django_db
def test_a_payload_without_secrets_is_shown_as_is():
    delivery = webhook_delivery_create(
        issuer=IssuerFactory(), kind="3ds_notification", url="https://x.example", payload={"status": "SUCCESSFUL", "eci": "05"}
    )
    assert delivery.display_payload == {"status": "SUCCESSFUL", "eci": "05"}
    assert not delivery.has_secrets
    assert delivery.status == WebhookDelivery.PENDING and delivery.tries == 0


@pytest.mark.parametrize(
    "status_code, outcome",
    [(200, OK), (201, OK), (204, OK), (500, TRANSIENT), (502, TRANSIENT), (503, TRANSIENT), (504, TRANSIENT),
     (429, TRANSIENT), (400, PERMANENT), (401, PERMANENT), (403, PERMANENT), (404, PERMANENT), (409, PERMANENT),
     (410, PERMANENT), (422, PERMANENT), (301, PERMANENT), (302, PERMANENT)],
)
def test_5xx_and_429_are_retried_other_4xx_are_not(status_code, outcome):
    assert classify_status(status_code) == outcome


def test_retry_after_reads_seconds_or_an_http_date():
    assert retry_after_seconds("120") == 120
    assert 55 <= retry_after_seconds(format_datetime(timezone.now() + timedelta(seconds=60), usegmt=True)) <= 60
    assert retry_after_seconds(format_datetime(timezone.now() - timedelta(seconds=60), usegmt=True)) == 0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
