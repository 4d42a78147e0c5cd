"""The whole delivery machine in this process (tasks eager) against a local receiver: which
answers are retried, what each try records, what is kept afterwards."""

import json
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.exceptions import Conflict
from apps.delivery import engine
from apps.webhooks import services
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.tasks import deliver
from tests.factories import IssuerFactory
from tests.support.delivery import sweep_until_settled
from tests.webhooks.conftest import HANG, make_otp_payload, new_otp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.OUTBOUND_MAX_TRIES = 3
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 0.5


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Enqueue a delivery as a caller would and run everything that follows its commit."""

    def send(*, issuer, payload=None, otp=None, url=None, **kwargs) -> WebhookDelivery:
        with django_capture_on_commit_callbacks(execute=True):
            if payload is None:
                payload = make_otp_payload(issuer, otp=otp or new_otp())
                delivery = services.deliver_otp_enqueue(issuer=issuer, payload=payload, acs_trans_id=None)
            else:
                delivery = services.webhook_delivery_create(
                    issuer=issuer, kind="3ds_notification", url=url or issuer.deliver_otp_url, payload=payload, **kwargs
                )
        sweep_until_settled("webhooks")  # the retries, as the sweep makes them in process
        delivery.refresh_from_db()
        return delivery

    return send


def attempts(delivery):
    return list(delivery.attempts.values_list("number", "status_code", "error_class"))


def test_it_delivers_on_the_first_try(send, receiver, webhook_issuer):
    otp = new_otp()
    payload = make_otp_payload(webhook_issuer, otp=otp)
    delivery = send(issuer=webhook_issuer, payload=payload, secret_values=[otp])

    assert delivery.status == WebhookDelivery.SUCCEEDED and delivery.finished_at
    assert attempts(delivery) == [(1, 204, "")]
    [request] = receiver.received
    assert request.signature_ok
    assert request.path == "/deliver-otp"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Webhook-Id"] == str(delivery.pk)
    assert json.loads(request.body) == payload
    assert delivery.payload_blob is None  # nothing left to decrypt
    event = AuditEvent.objects.get(kind="webhook.delivered", object_id=str(delivery.pk))
    assert otp not in json.dumps(event.data)


def test_a_5xx_is_retried_with_the_same_bytes_each_signed(send, receiver, webhook_issuer):
    receiver.answer(500, 500, 204)
    delivery = send(issuer=webhook_issuer)

    assert delivery.status == WebhookDelivery.SUCCEEDED
    assert attempts(delivery) == [(1, 500, ""), (2, 500, ""), (3, 204, "")]
    assert len({r.body for r in receiver.received}) == 1
    assert all(r.signature_ok for r in receiver.received)
    assert {r.headers["X-Webhook-Id"] for r in receiver.received} == {str(delivery.pk)}


def test_a_4xx_fails_at_once(send, receiver, webhook_issuer):
    receiver.answer(400)
    delivery = send(issuer=webhook_issuer)

    assert delivery.status == WebhookDelivery.FAILED
    assert attempts(delivery) == [(1, 400, "")]
    assert delivery.last_error == "HTTP 400"
    assert AuditEvent.objects.filter(kind="webhook.failed", object_id=str(delivery.pk)).exists()


def test_it_gives_up_after_the_maximum_of_tries(send, receiver, webhook_issuer):
    receiver.default = 503
    delivery = send(issuer=webhook_issuer)

    assert delivery.status == WebhookDelivery.FAILED
    assert attempts(delivery) == [(n, 503, "") for n in (1, 2, 3)]
    assert len(receiver.received) == 3
    assert delivery.payload_blob is None  # it carried an OTP


def test_429_is_retried(send, receiver, webhook_issuer):
    receiver.answer((429, {"Retry-After": "1"}), 204)
    delivery = send(issuer=webhook_issuer)
    assert delivery.status == WebhookDelivery.SUCCEEDED
    assert attempts(delivery) == [(1, 429, ""), (2, 204, "")]


def test_a_timeout_is_retried(send, receiver, webhook_issuer):
    receiver.answer(HANG, 204)
    delivery = send(issuer=webhook_issuer)
    assert delivery.status == WebhookDelivery.SUCCEEDED
    assert attempts(delivery) == [(1, None, "ReadTimeout"), (2, 204, "")]
    assert delivery.attempts.first().duration_ms >= 400


def test_a_refused_connection_is_retried_then_fails(send, webhook_issuer):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    delivery = send(issuer=webhook_issuer, payload={"a": 1}, url=f"http://127.0.0.1:{closed_port}/")
    assert delivery.status == WebhookDelivery.FAILED
    assert attempts(delivery) == [(n, None, "ConnectionError") for n in (1, 2, 3)]
    assert delivery.last_error.startswith("ConnectionError")


def test_a_redirect_is_not_followed(send, receiver, webhook_issuer):
    receiver.answer((302, {"Location": "http://127.0.0.1:9/elsewhere"}))
    delivery = send(issuer=webhook_issuer)
    assert delivery.status == WebhookDelivery.FAILED
    assert attempts(delivery) == [(1, 302, "")]
    assert delivery.last_error == "HTTP 302"


def test_a_receiver_that_rejects_the_signature_fails_the_delivery(send, receiver, webhook_issuer):
    receiver.secret = "whsec_not_the_issuers"
    delivery = send(issuer=webhook_issuer)
    assert delivery.status == WebhookDelivery.FAILED
    assert attempts(delivery) == [(1, 401, "")]


def test_without_a_webhook_secret_nothing_is_sent(send, receiver):
    issuer = IssuerFactory(deliver_otp_url=f"{receiver.url}/deliver-otp")
    delivery = send(issuer=issuer)
    assert delivery.status == WebhookDelivery.FAILED
    assert attempts(delivery) == [(1, None, "NoWebhookSecret")]
    assert receiver.received == []


def test_the_response_excerpt_is_short_and_scrubbed(send, receiver, webhook_issuer):
    otp = new_otp()
    echo = lambda body: b"you sent: " + body + b" " + b"x" * 2000  # noqa: E731
    receiver.answer((400, {"Content-Type": "text/plain"}, echo))
    delivery = send(issuer=webhook_issuer, otp=otp)
    excerpt = delivery.attempts.get().response_excerpt
    assert excerpt.startswith("you sent: ") and "[REDACTED]" in excerpt
    assert otp not in excerpt
    assert len(excerpt) == 500


def test_a_redelivered_task_never_sends_again_after_success(send, receiver, webhook_issuer):
    delivery = send(issuer=webhook_issuer)
    deliver.apply(args=[delivery.pk])
    deliver.apply(args=[delivery.pk])
    assert len(receiver.received) == 1
    assert attempts(delivery) == [(1, 204, "")]


def test_a_try_in_progress_is_not_taken_by_a_second_task_until_its_claim_lapses(receiver, webhook_issuer):
    delivery = services.webhook_delivery_create(
        issuer=webhook_issuer, kind="test", url=receiver.url, payload={"a": 1}
    )
    in_progress = WebhookDelivery.objects.filter(pk=delivery.pk)
    in_progress.update(tries=1, lease_expires_at=timezone.now() + timedelta(seconds=30))
    # Not sent; the caller is told to look again when the lease lapses (its worker may be gone).
    assert 25 <= services.webhook_delivery_attempt(delivery_id=delivery.pk) <= 31
    assert receiver.received == []

    in_progress.update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # that worker died
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.SUCCEEDED and attempts(delivery) == [(2, 204, "")]


def test_a_failed_delivery_without_secrets_can_be_retried(send, receiver, webhook_issuer, django_capture_on_commit_callbacks):
    receiver.answer(400)
    delivery = send(issuer=webhook_issuer, payload={"status": "SUCCESSFUL"})
    assert delivery.status == WebhookDelivery.FAILED and delivery.payload_blob is not None

    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_delivery_retry(delivery=delivery, actor="staff:alice")
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.SUCCEEDED
    assert attempts(delivery) == [(1, 400, ""), (2, 204, "")]
    assert len({r.body for r in receiver.received}) == 1
    assert AuditEvent.objects.filter(kind="webhook.retried", actor="staff:alice").exists()


def test_a_failed_delivery_with_an_otp_cannot_be_retried(send, receiver, webhook_issuer):
    receiver.answer(400)
    delivery = send(issuer=webhook_issuer)
    with pytest.raises(Conflict, match="one-time secret"):
        services.webhook_delivery_retry(delivery=delivery, actor="staff:alice")


def test_only_a_failed_delivery_can_be_retried(send, webhook_issuer):
    delivery = send(issuer=webhook_issuer)
    with pytest.raises(Conflict, match="Only a failed"):
        services.webhook_delivery_retry(delivery=delivery, actor="staff:alice")


def test_clean_up_wipes_what_is_no_longer_needed(receiver, webhook_issuer):
    def make(status, *, age_days=0, has_secrets=False):
        delivery = services.webhook_delivery_create(
            issuer=webhook_issuer, kind="test", url=receiver.url, payload={"a": 1}, secret_values=["9999"] if has_secrets else []
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=status, created_at=timezone.now() - timedelta(days=age_days)
        )
        return delivery

    recent_failed = make(WebhookDelivery.FAILED, age_days=1)
    old_failed = make(WebhookDelivery.FAILED, age_days=8)
    failed_with_otp = make(WebhookDelivery.FAILED, has_secrets=True)
    succeeded = make(WebhookDelivery.SUCCEEDED)
    old_pending = make(WebhookDelivery.PENDING, age_days=8)
    recent_pending = make(WebhookDelivery.PENDING)

    assert services.webhook_payloads_wipe(older_than_days=7) == 4

    kept = set(WebhookDelivery.objects.filter(payload_blob__isnull=False).values_list("pk", flat=True))
    assert kept == {recent_failed.pk, recent_pending.pk}
    old_pending.refresh_from_db()
    assert old_pending.status == WebhookDelivery.FAILED and "Given up" in old_pending.last_error
    assert AuditEvent.objects.filter(kind="webhook.failed", object_id=str(old_pending.pk)).exists()
    assert {old_failed.pk, failed_with_otp.pk, succeeded.pk}.isdisjoint(kept)


def test_a_delivery_whose_task_was_lost_is_resumed(receiver, webhook_issuer):
    # Written without its task ever running, as if the broker had lost it.
    lost = services.webhook_delivery_create(issuer=webhook_issuer, kind="test", url=receiver.url, payload={"a": 1})
    WebhookDelivery.objects.filter(pk=lost.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    recent = services.webhook_delivery_create(issuer=webhook_issuer, kind="test", url=receiver.url, payload={"b": 2})

    assert engine.sweep(names=("webhooks",)) == {"webhooks": 1}
    lost.refresh_from_db(), recent.refresh_from_db()
    assert lost.status == WebhookDelivery.SUCCEEDED
    assert recent.status == WebhookDelivery.PENDING  # its task may still be on its way
