"""End to end: a real Celery worker on Redis, PostgreSQL, the FCM adapter with its OAuth2 flow,
and the fake FCM server. Skipped without CELERY_BROKER_URL and a PostgreSQL DATABASE_URL."""

import base64
import json
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.push.models import PushDelivery
from apps.delivery import engine
from apps.push.services import push_authn_request
from apps.push.tasks import push_send
from tests.concurrency import run_parallel
from tests.conftest import wait_for
from tests.push.conftest import create, make_device, needs_oob_hook, outcomes, reload

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def finished(delivery, timeout=30.0) -> PushDelivery:
    return wait_for(lambda: (d := reload(delivery)).status in ("sent", "failed", "refused") and d, timeout=timeout)


def kinds(delivery) -> list[str]:
    return list(AuditEvent.objects.filter(object_id=str(delivery.pk)).order_by("id").values_list("kind", flat=True))


def test_the_worker_sends_exactly_one_push(celery_worker, fake_fcm, device):
    token = device.get_push_token()
    delivery = finished(create(device))
    [message] = fake_fcm.messages(push_token=token)
    assert message.outcome == "accepted"
    assert message.data == {"type": "3ds_authn_request", "acsTransId": str(delivery.acs_trans_id)}
    assert (delivery.status, delivery.provider, delivery.provider_message_id) == ("sent", "fcm", message.name)
    [attempt] = delivery.attempts.all()
    assert (attempt.state, attempt.status_code, attempt.task_id != "", attempt.provider) == ("succeeded", 200, True, "fcm")
    assert kinds(delivery) == ["push.created", "push.sent"]


def test_a_500_then_success_sends_exactly_one_push(celery_worker, fake_fcm, device):
    token = device.get_push_token()
    fake_fcm.program(token, "500")
    delivery = finished(create(device))
    assert delivery.status == "sent" and outcomes(delivery) == ["failed_transient", "succeeded"]
    assert [m.outcome for m in fake_fcm.messages(push_token=token)] == ["error 500", "accepted"]


def test_a_429_retry_after_is_honoured_by_the_worker(celery_worker, fake_fcm, device):
    fake_fcm.program(device.get_push_token(), "429:2")
    delivery = finished(create(device))
    first, second = delivery.attempts.order_by("number")
    assert (first.status_code, second.state) == (429, "succeeded")
    # The engine honours a Retry-After up to its backoff cap: 0.5 s in the test worker
    # (tests/fakes/twilio_server.py), whose own backoff after a first try is at most 0.05 s.
    assert (second.started_at - first.started_at).total_seconds() >= 0.5


def test_an_unregistered_token_fails_after_exactly_one_request(celery_worker, fake_fcm, device):
    token = device.get_push_token()
    fake_fcm.program(token, "unregistered")
    delivery = finished(create(device))
    assert (delivery.status, delivery.error_code) == ("failed", "unregistered")
    time.sleep(1.0)  # longer than any backoff here: a retry would have happened by now
    assert len(fake_fcm.messages(push_token=token)) == 1
    assert outcomes(reload(delivery)) == ["failed_permanent"]
    assert kinds(delivery) == ["push.created", "push.failed"]


@needs_oob_hook
def test_an_undeliverable_push_is_reported_to_the_oob_flow(celery_worker, fake_fcm, device):
    fake_fcm.program(device.get_push_token(), "unregistered")
    delivery = finished(create(device))
    reported = wait_for(lambda: (d := reload(delivery)).undeliverable_reported_at is not None and d)
    assert reported.next_attempt_at is None


def test_tries_are_exhausted_then_it_fails(celery_worker, fake_fcm, device):
    token = device.get_push_token()
    fake_fcm.program(token, "500", "503", "hang", "500")
    delivery = finished(create(device))
    assert (delivery.status, delivery.tries, delivery.error_code) == ("failed", 3, "timeout")
    assert outcomes(delivery) == ["failed_transient"] * 3
    assert [m.outcome for m in fake_fcm.messages(push_token=token)] == ["error 500", "error 503", "hung"]
    assert kinds(delivery) == ["push.created", "push.failed"]


def test_a_redelivered_task_after_success_sends_nothing(celery_worker, fake_fcm, device):
    token = device.get_push_token()
    delivery = finished(create(device))
    again = [push_send.delay(str(delivery.pk)).id for _ in range(2)]
    wait_for(lambda: all(f"push.send[{task_id}] succeeded" in celery_worker.log_path.read_text() for task_id in again))
    assert len(fake_fcm.messages(push_token=token)) == 1
    assert reload(delivery).attempts.count() == 1


def test_parallel_requests_for_one_device_send_exactly_the_limit(celery_worker, fake_fcm, issuer):
    assert settings.PUSH_MAX_PER_DEVICE_PER_MINUTE == 3  # the worker's too: the default
    device = make_device(issuer=issuer)
    token = device.get_push_token()

    def request(i):
        with transaction.atomic():
            return push_authn_request(device=device, acs_trans_id=uuid.uuid4()).pk

    ids = run_parallel(10, request)
    deliveries = [finished(PushDelivery(pk=pk)) for pk in ids]
    assert sorted(d.status for d in deliveries) == ["refused"] * 7 + ["sent"] * 3
    time.sleep(1.0)
    assert len(fake_fcm.accepted(push_token=token)) == 3 and len(fake_fcm.messages(push_token=token)) == 3


def test_the_delivery_sweep_hands_a_lost_push_to_the_worker(celery_worker, fake_fcm, device):
    token = device.get_push_token()
    parked = f"push-lost-{uuid.uuid4().hex[:8]}"
    delivery = _create_parked(device, parked)
    assert len(_raw_queue(parked)) == 1  # and now it is gone, as after a broker restart
    time.sleep(0.5)
    assert fake_fcm.messages(push_token=token) == []
    assert engine.sweep(grace_seconds=0, names=("push",))["push"] >= 1
    assert finished(delivery).status == "sent"
    assert len(fake_fcm.messages(push_token=token)) == 1


# ---------------------------------------------------------------- the token stays secret


def _create_parked(device, queue: str) -> PushDelivery:
    """A push whose task lands in a queue nobody consumes."""
    from issuer_portal.celery import app

    routes = app.conf.task_routes
    app.conf.update(task_routes={"push.*": {"queue": queue}})  # update() rebuilds the router
    try:
        return create(device)
    finally:
        app.conf.update(task_routes=routes)


def _raw_queue(queue: str) -> list[bytes]:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        return client.lrange(prefix + queue, 0, -1)
    finally:
        for key in client.scan_iter(match=f"{prefix}*{queue}*"):
            client.delete(key)
        client.close()


def test_the_token_is_in_no_task_message_log_line_audit_event_or_admin_page(celery_worker, fake_fcm, issuer):
    token = "fcm-token-that-must-stay-secret:APA91b" + "s" * 80
    device = make_device(issuer=issuer, push_token=token)

    # Park one task in a queue nobody consumes, to read the message raw from Redis.
    parked = f"push-parked-{uuid.uuid4().hex[:8]}"
    parked_delivery = _create_parked(device, parked)
    [raw] = _raw_queue(parked)
    args, kwargs, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
    assert (args, kwargs) == ([str(parked_delivery.pk)], {})
    assert token.encode() not in raw

    # Through the real worker, with a failure on the way, and one that fails for good.
    fake_fcm.program(token, "invalid_argument")
    failed = finished(create(device))
    sent = finished(create(device))
    assert (failed.status, sent.status) == ("failed", "sent")
    assert [m.push_token for m in fake_fcm.messages(push_token=token)] == [token, token]  # really used

    log = celery_worker.log_path.read_text()
    assert f"push {sent.pk} try 1/3: accepted" in log and token not in log
    assert all(token not in json.dumps(e.data) for e in AuditEvent.objects.all())
    client = Client()
    client.force_login(User.objects.create_superuser(username="root", password="x"))
    for url in (reverse("admin:push_pushdelivery_changelist"), reverse("admin:push_pushdelivery_change", args=[failed.pk]),
                reverse("admin:push_pushdelivery_change", args=[sent.pk])):
        assert token not in client.get(url).content.decode()
