"""Webhooks never go to loopback, private or link-local addresses unless OUTBOUND_ALLOW_PRIVATE
(SPEC §4): a refused destination fails at once, visibly, and the address sees no connection."""

import pytest

from apps.audit.models import AuditEvent
from apps.webhooks import services
from apps.webhooks.models import WebhookDelivery
from tests.core.tripwire import tripwire  # noqa: F401  (fixture)
from tests.factories import IssuerFactory
from tests.webhooks.conftest import make_otp_payload, new_otp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture(autouse=True)
def guarded(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_MAX_TRIES = 6
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 0.5


def send(issuer, url, capture) -> WebhookDelivery:
    otp = new_otp()
    with capture(execute=True):
        delivery = services.webhook_delivery_create(
            issuer=issuer, kind="deliver_otp", url=url, payload=make_otp_payload(issuer, otp=otp), secret_values=[otp]
        )
    delivery.refresh_from_db()
    return delivery


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/deliver-otp",
        "http://localhost:{port}/deliver-otp",
        "http://[::ffff:127.0.0.1]:{port}/deliver-otp",
        "http://10.0.0.5:{port}/deliver-otp",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_a_webhook_to_a_private_address_fails_at_once_and_says_why(tripwire, django_capture_on_commit_callbacks, url):
    issuer = IssuerFactory()
    issuer.set_webhook_secret("whsec_test_guard")
    issuer.save()

    delivery = send(issuer, url.format(port=tripwire.port), django_capture_on_commit_callbacks)

    assert (delivery.status, delivery.tries) == (WebhookDelivery.FAILED, 1)  # permanent: no retries
    assert delivery.last_error.startswith("Destination not allowed")
    assert list(delivery.attempts.values_list("error_class", "status_code", "response_excerpt")) == [
        ("DestinationNotAllowed", None, "")
    ]
    event = AuditEvent.objects.get(kind="webhook.failed", object_id=str(delivery.pk))
    assert event.data["error"].startswith("Destination not allowed")
    assert delivery.payload_blob is None  # it carried an OTP: wiped when it ended
    assert tripwire.connections == 0


def test_the_staff_page_shows_destination_not_allowed(admin_client, tripwire, django_capture_on_commit_callbacks):
    issuer = IssuerFactory()
    issuer.set_webhook_secret("whsec_test_guard")
    issuer.save()
    delivery = send(issuer, tripwire.url("localhost", "/x"), django_capture_on_commit_callbacks)
    page = admin_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200 and b"Destination not allowed" in page.content
