"""Deliveries in the admin: scoped to the staff user's issuer, read-only, OTP never shown."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.webhooks import services
from apps.webhooks.models import WebhookDelivery
from tests.factories import IssuerFactory
from tests.support.delivery import sweep_until_settled
from tests.webhooks.conftest import make_otp_payload, new_otp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]

CHANGELIST = "admin:webhooks_webhookdelivery_changelist"


def staff_client(issuer, *perms: str) -> Client:
    user = User.objects.create_user(username=f"staff-{issuer.issuer_id}", password="x" * 16, is_staff=True, issuer=issuer)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="webhooks", codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sent(webhook_issuer, receiver, django_capture_on_commit_callbacks):
    """A DeliverOTP the receiver refused after one try, with its OTP."""
    otp = new_otp()
    receiver.answer(500, 400)
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.deliver_otp_enqueue(
            issuer=webhook_issuer, payload=make_otp_payload(webhook_issuer, otp=otp), acs_trans_id=None
        )
    sweep_until_settled("webhooks")  # the retry, as the sweep makes it in process
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.FAILED
    return delivery, otp


def test_staff_see_the_tries_and_the_redacted_payload_never_the_otp(sent, webhook_issuer):
    delivery, otp = sent
    client = staff_client(webhook_issuer, "view_webhookdelivery")

    listing = client.get(reverse(CHANGELIST))
    page = client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))

    assert listing.status_code == 200 and page.status_code == 200
    html = page.content.decode()
    assert "[REDACTED]" in html and "threeDSDetails" in html
    assert html.count("<td class=\"field-status_code\">") == 2  # both tries, inline
    assert otp not in listing.content.decode() + html
    assert 'name="_save"' not in html  # read-only


def test_staff_of_another_issuer_see_nothing(sent):
    delivery, _ = sent
    client = staff_client(IssuerFactory(), "view_webhookdelivery", "change_webhookdelivery")

    assert f">{delivery.pk}<" not in client.get(reverse(CHANGELIST)).content.decode()
    response = client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    assert response.status_code == 302  # "does not exist", back to the index


def test_retry_now_queues_a_failed_delivery_again(webhook_issuer, receiver, django_capture_on_commit_callbacks):
    receiver.answer(400)
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_delivery_create(
            issuer=webhook_issuer, kind="3ds_notification", url=receiver.url, payload={"status": "SUCCESSFUL"}
        )
    client = staff_client(webhook_issuer, "view_webhookdelivery", "change_webhookdelivery")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse(CHANGELIST), {"action": "retry_now", "_selected_action": [delivery.pk]}, follow=True)

    assert "Queued again: 1." in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.SUCCEEDED and delivery.tries == 2


def test_retry_now_explains_why_an_otp_delivery_cannot_be_retried(sent, webhook_issuer):
    delivery, _ = sent
    client = staff_client(webhook_issuer, "view_webhookdelivery", "change_webhookdelivery")

    response = client.post(reverse(CHANGELIST), {"action": "retry_now", "_selected_action": [delivery.pk]}, follow=True)

    assert "no longer stored" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.FAILED and delivery.tries == 2


def test_retry_now_is_offered_only_to_who_may_change_deliveries(sent, webhook_issuer):
    viewer = staff_client(webhook_issuer, "view_webhookdelivery")
    assert "retry_now" not in viewer.get(reverse(CHANGELIST)).content.decode()
