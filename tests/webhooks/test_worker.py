"""Webhooks through the broker and a real worker process, against a local issuer backend.

These tests take their timing (tries, backoff, timeout) from django settings, made equal to
the worker's; they pass with the defaults and are quick with small values
(OUTBOUND_BACKOFF_BASE_SECONDS=0.05 OUTBOUND_BACKOFF_MAX_SECONDS=0.5 OUTBOUND_MAX_TRIES=3
OUTBOUND_HTTP_TIMEOUT_SECONDS=1)."""

import json
import time

import pytest
from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.db import transaction

from apps.audit.models import AuditEvent
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.services import deliver_otp_enqueue
from tests.conftest import wait_for
from tests.webhooks.conftest import HANG, make_otp_payload, new_otp

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def worker_timing(request, settings):
    """The OUTBOUND_* values the worker runs with: tests/conftest.py gives it those of the fake
    Twilio server; without that fixture it inherits this process's environment."""
    try:
        worker_settings = request.getfixturevalue("twilio_server").django_settings()
    except pytest.FixtureLookupError:
        return
    for name, value in worker_settings.items():
        if name.startswith("OUTBOUND_"):
            setattr(settings, name, value)


def budget() -> float:
    """Long enough for every try, each timing out, with the longest backoff between them."""
    per_try = 2 * settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + settings.OUTBOUND_BACKOFF_MAX_SECONDS
    return settings.OUTBOUND_MAX_TRIES * per_try + 20


def enqueue(issuer, otp: str) -> tuple[WebhookDelivery, dict]:
    payload = make_otp_payload(issuer, otp=otp)
    with transaction.atomic():  # the task is published when this commits
        delivery = deliver_otp_enqueue(issuer=issuer, payload=payload, acs_trans_id=payload["acsTransId"])
    return delivery, payload


def finished(delivery: WebhookDelivery) -> WebhookDelivery:
    return wait_for(
        lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status__in=WebhookDelivery.TERMINAL).first(),
        timeout=budget(),
    )


def quiet_period() -> None:
    """Give a duplicate or late task the time it would need to (wrongly) send again."""
    time.sleep(max(1.0, 2 * settings.OUTBOUND_BACKOFF_MAX_SECONDS))


def signed_at(request) -> int:
    return int(request.headers["X-Signature"].split(",")[0].removeprefix("t="))


def assert_the_otp_never_leaked(otp: str, delivery: WebhookDelivery, published: list, celery_worker) -> None:
    messages = [m for m in published if m["task"] == "webhooks.deliver"]
    assert messages, "the task went through the broker"
    for message in messages:
        args, kwargs, _ = message["body"]
        assert list(args) == [delivery.pk] and kwargs == {}  # only the id travels
        assert message["routing_key"] == "webhooks"
        assert otp not in repr(message)
    # The worker logged the tries, and never the code.
    log = wait_for(lambda: (text := celery_worker.log_path.read_text()) and f"webhooks {delivery.pk} " in text and text)
    assert otp not in log
    delivery.refresh_from_db()
    assert delivery.payload_blob is None
    assert delivery.display_payload["otp"] == "[REDACTED]"
    everything = "".join(serializers.serialize("json", model._default_manager.all()) for model in apps.get_models())
    assert otp not in everything


def test_it_delivers_on_the_first_try(celery_worker, receiver, webhook_issuer, published):
    otp = new_otp()
    delivery, payload = enqueue(webhook_issuer, otp)

    delivery = finished(delivery)
    assert delivery.status == WebhookDelivery.SUCCEEDED
    [attempt] = delivery.attempts.all()
    assert attempt.status_code == 204 and attempt.task_id
    [request] = receiver.received
    assert request.signature_ok and request.headers["X-Webhook-Id"] == str(delivery.pk)
    assert json.loads(request.body) == payload
    assert AuditEvent.objects.filter(kind="webhook.delivered", object_id=str(delivery.pk)).exists()
    assert_the_otp_never_leaked(otp, delivery, published, celery_worker)


def test_5xx_then_success_delivers_once_with_the_same_bytes(celery_worker, receiver, webhook_issuer, published):
    otp = new_otp()
    receiver.answer(500, 500, 204)
    delivery, _ = enqueue(webhook_issuer, otp)

    delivery = finished(delivery)
    quiet_period()
    assert delivery.status == WebhookDelivery.SUCCEEDED
    assert [a.status_code for a in delivery.attempts.all()] == [500, 500, 204]
    assert [r.answered for r in receiver.received] == [500, 500, 204]  # delivered once
    assert len({r.body for r in receiver.received}) == 1
    assert all(r.signature_ok for r in receiver.received)
    assert all(abs(signed_at(r) - time.time()) < 60 for r in receiver.received)  # signed when sent
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:])]
    assert all(gap >= settings.OUTBOUND_BACKOFF_BASE_SECONDS / 2 for gap in gaps)  # backed off
    assert_the_otp_never_leaked(otp, delivery, published, celery_worker)


def test_a_4xx_fails_after_exactly_one_try(celery_worker, receiver, webhook_issuer, published):
    otp = new_otp()
    receiver.answer(400)
    delivery, _ = enqueue(webhook_issuer, otp)

    delivery = finished(delivery)
    quiet_period()
    assert delivery.status == WebhookDelivery.FAILED
    assert [a.status_code for a in delivery.attempts.all()] == [400]
    assert len(receiver.received) == 1
    assert AuditEvent.objects.filter(kind="webhook.failed", object_id=str(delivery.pk)).exists()
    assert_the_otp_never_leaked(otp, delivery, published, celery_worker)


def test_it_fails_after_the_maximum_of_tries(celery_worker, receiver, webhook_issuer, published):
    otp = new_otp()
    receiver.default = 503
    delivery, _ = enqueue(webhook_issuer, otp)

    delivery = finished(delivery)
    quiet_period()
    assert delivery.status == WebhookDelivery.FAILED
    assert delivery.tries == settings.OUTBOUND_MAX_TRIES
    assert [a.status_code for a in delivery.attempts.all()] == [503] * settings.OUTBOUND_MAX_TRIES
    assert len(receiver.received) == settings.OUTBOUND_MAX_TRIES
    assert len({r.body for r in receiver.received}) == 1 and all(r.signature_ok for r in receiver.received)
    assert_the_otp_never_leaked(otp, delivery, published, celery_worker)


def test_retry_after_is_honoured_up_to_the_max(celery_worker, receiver, webhook_issuer, published):
    receiver.answer((429, {"Retry-After": "1"}), 204)
    delivery, _ = enqueue(webhook_issuer, new_otp())

    delivery = finished(delivery)
    assert delivery.status == WebhookDelivery.SUCCEEDED
    first, second = receiver.received
    assert second.at - first.at >= 0.9 * min(1.0, settings.OUTBOUND_BACKOFF_MAX_SECONDS)


def test_a_receiver_that_hangs_past_the_timeout_is_retried(celery_worker, receiver, webhook_issuer, published):
    otp = new_otp()
    receiver.answer(HANG, 204)
    delivery, _ = enqueue(webhook_issuer, otp)

    delivery = finished(delivery)
    assert delivery.status == WebhookDelivery.SUCCEEDED
    assert [(a.status_code, a.error_class) for a in delivery.attempts.all()] == [(None, "ReadTimeout"), (204, "")]
    assert_the_otp_never_leaked(otp, delivery, published, celery_worker)
