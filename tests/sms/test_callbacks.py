"""Twilio status callbacks: signed with the sending account's auth token, applied only forward."""

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.sms.models import SmsDelivery
from apps.sms.services import _rank, sms_delivery_create
from apps.sms.tasks import sms_send
from tests.fakes.twilio_server import FALLBACK_SID, PRIMARY_SID, PRIMARY_TOKEN
from tests.sms.conftest import CODE, new_number, otp_body, post_callback, reload

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


@pytest.fixture
def sent(issuer, fake_twilio):
    """A delivery the primary account accepted, with its try."""
    delivery = sms_delivery_create(issuer=issuer, to=new_number(), body=otp_body(), secret=CODE)
    sms_send.apply(args=[str(delivery.pk)])
    return reload(delivery).attempts.get()


def snapshot(attempt):
    delivery = reload(attempt.delivery)
    attempt.refresh_from_db()
    return delivery.status, delivery.error_code, attempt.provider_status, attempt.error_code, AuditEvent.objects.count()


def test_a_signed_callback_updates_the_try_and_the_delivery(client, sent):
    response = post_callback(client, sent, status="delivered")
    assert response.status_code == 200 and response.json() == {"status": "updated"}
    delivery = reload(sent.delivery)
    sent.refresh_from_db()
    assert (delivery.status, sent.provider_status) == ("delivered", "delivered")
    assert delivery.finished_at is not None
    event = AuditEvent.objects.get(kind="sms.delivered")
    assert CODE not in str(event.data)


def test_undelivered_keeps_the_carriers_error_code(client, sent):
    post_callback(client, sent, status="undelivered", ErrorCode="30003")
    delivery = reload(sent.delivery)
    assert (delivery.status, delivery.error_code) == ("undelivered", "30003")


def test_statuses_move_forward_through_sending_and_sent(client, sent):
    for status in ("sending", "sent", "delivered"):
        post_callback(client, sent, status=status)
        assert reload(sent.delivery).status == status


@pytest.mark.parametrize("late", ["queued", "sending", "sent", "undelivered", "failed", "delivered"])
def test_a_late_callback_never_moves_a_delivered_message_backwards(client, sent, late):
    post_callback(client, sent, status="delivered")
    before = snapshot(sent)
    response = post_callback(client, sent, status=late)
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert snapshot(sent) == before


def test_a_forged_signature_is_refused_and_changes_nothing(client, sent):
    before = snapshot(sent)
    response = post_callback(client, sent, status="delivered", signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "bad_signature"
    assert snapshot(sent) == before


def test_a_missing_signature_is_refused(client, sent):
    before = snapshot(sent)
    assert post_callback(client, sent, status="delivered", signature="").status_code == 403
    assert snapshot(sent) == before


def test_a_signature_by_another_account_is_refused(client, sent, fake_twilio):
    before = snapshot(sent)
    response = post_callback(client, sent, status="delivered", token=fake_twilio.accounts[FALLBACK_SID])
    assert response.status_code == 403 and snapshot(sent) == before


def test_a_signature_over_other_params_is_refused(client, sent):
    """Signed for "sent", body says "delivered": the params are part of the signature."""
    from twilio.request_validator import RequestValidator

    from tests.sms.conftest import callback_url

    params = {"MessageSid": sent.provider_message_id, "MessageStatus": "sent"}
    signature = RequestValidator(PRIMARY_TOKEN).compute_signature(callback_url(sent), params)
    before = snapshot(sent)
    assert post_callback(client, sent, status="delivered", signature=signature).status_code == 403
    assert snapshot(sent) == before


def test_the_fallback_accounts_callbacks_are_checked_with_its_own_token(client, issuer, fake_twilio):
    fake_twilio.program(PRIMARY_SID, 21408)
    delivery = sms_delivery_create(issuer=issuer, to=new_number(), body=otp_body(), secret=CODE)
    sms_send.apply(args=[str(delivery.pk)])
    attempt = reload(delivery).attempts.get(provider_role="fallback")
    assert post_callback(client, attempt, status="delivered").status_code == 403  # primary's token
    response = post_callback(client, attempt, status="delivered", token=fake_twilio.accounts[FALLBACK_SID])
    assert response.status_code == 200 and reload(delivery).status == "delivered"


def test_an_unknown_token_is_acknowledged_and_changes_nothing(client, sent):
    before = snapshot(sent)
    sent.callback_token = "no-such-token"
    response = post_callback(client, sent, status="delivered")
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    sent.callback_token = type(sent).objects.get(pk=sent.pk).callback_token
    assert snapshot(sent) == before


def test_an_unknown_message_sid_is_acknowledged_and_changes_nothing(client, sent):
    before = snapshot(sent)
    response = post_callback(client, sent, status="delivered", message_sid="SM" + "0" * 32)
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert snapshot(sent) == before


def test_an_unknown_status_changes_nothing(client, sent):
    before = snapshot(sent)
    assert post_callback(client, sent, status="exploded").status_code == 200
    assert snapshot(sent) == before


def test_other_methods_get_json_405(client, sent):
    response = client.get(f"/webhooks/twilio/status/{sent.callback_token}")
    assert response.status_code == 405 and response["Content-Type"] == "application/json"


def test_the_status_order():
    order = ["pending", "queued", "sending", "sent", "delivered"]
    assert [_rank(s) for s in order] == sorted(_rank(s) for s in order)
    assert _rank("accepted") == _rank("queued") == _rank("scheduled")
    assert _rank("delivered") == _rank("undelivered") == _rank("failed")
    assert _rank("nonsense") == 0
    assert SmsDelivery.FINAL == {"delivered", "undelivered", "failed", "cancelled"}
