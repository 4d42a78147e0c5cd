"""End to end: a real Celery worker on Redis, PostgreSQL, the real twilio client and the fake
Twilio server. Skipped without CELERY_BROKER_URL and a PostgreSQL DATABASE_URL (run in CI)."""

import base64
import json
import time
import uuid

import pytest
import redis
from celery.signals import before_task_publish
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.sms.models import FALLBACK, PRIMARY, SmsDelivery
from apps.sms.services import sms_delivery_create
from apps.sms.tasks import sms_send
from tests.conftest import wait_for
from tests.fakes.twilio_server import FALLBACK_SID, PRIMARY_SID
from tests.sms.conftest import CODE, new_number, otp_body, reload

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def create(issuer, to=None, code=CODE) -> SmsDelivery:
    with transaction.atomic():  # commits: the task is published after this block
        return sms_delivery_create(issuer=issuer, to=to or new_number(), body=otp_body(code), secret=code)


def finished(delivery, timeout=30.0) -> SmsDelivery:
    return wait_for(lambda: (d := reload(delivery)).status != SmsDelivery.PENDING and d, timeout=timeout)


def states(delivery):
    return [(a.provider_role, a.try_number, a.state) for a in delivery.attempts.order_by("started_at", "id")]


def test_the_worker_sends_one_sms_and_records_the_try(celery_worker, fake_twilio, issuer):
    delivery = finished(create(issuer))
    [request] = fake_twilio.requests(to=delivery.to)
    attempt = delivery.attempts.get()
    assert (attempt.state, attempt.provider_message_id, attempt.task_id != "") == ("succeeded", request.sid, True)
    assert (delivery.status, delivery.provider_message_id) == ("queued", request.sid)
    assert delivery.body_blob is None
    assert AuditEvent.objects.filter(kind="sms.sent", object_id=str(delivery.pk)).exists()


def test_a_500_then_success_sends_exactly_one_sms(celery_worker, fake_twilio, issuer):
    fake_twilio.program(PRIMARY_SID, "500")
    delivery = finished(create(issuer))
    assert states(delivery) == [(PRIMARY, 1, "failed_transient"), (PRIMARY, 2, "succeeded")]
    assert len(fake_twilio.requests(to=delivery.to)) == 2
    assert len(fake_twilio.accepted(to=delivery.to)) == 1


def test_timeouts_then_success(celery_worker, fake_twilio, issuer):
    fake_twilio.program(PRIMARY_SID, "hang", "hang")
    delivery = finished(create(issuer))
    assert states(delivery) == [(PRIMARY, 1, "failed_transient"), (PRIMARY, 2, "failed_transient"), (PRIMARY, 3, "succeeded")]
    assert {a.error_code for a in delivery.attempts.filter(state="failed_transient")} == {"timeout"}
    assert len(fake_twilio.accepted(to=delivery.to)) == 1


def test_an_invalid_number_fails_after_exactly_one_request(celery_worker, fake_twilio, issuer):
    fake_twilio.program(PRIMARY_SID, 21211)
    delivery = finished(create(issuer))
    assert (delivery.status, delivery.error_code) == ("failed", "21211")
    time.sleep(1.0)  # longer than any backoff: a retry would have happened by now
    assert len(fake_twilio.requests(to=delivery.to)) == 1
    assert states(reload(delivery)) == [(PRIMARY, 1, "failed_permanent")]
    assert AuditEvent.objects.filter(kind="sms.failed", object_id=str(delivery.pk)).exists()


def test_primary_down_for_every_try_then_the_fallback_sends_once(celery_worker, fake_twilio, issuer):
    fake_twilio.program(PRIMARY_SID, "503", "500", "429")
    delivery = finished(create(issuer))
    assert states(delivery) == [(PRIMARY, 1, "failed_transient"), (PRIMARY, 2, "failed_transient"),
                                (PRIMARY, 3, "failed_transient"), (FALLBACK, 1, "succeeded")]
    assert len(fake_twilio.requests(to=delivery.to, account_sid=PRIMARY_SID)) == 3
    assert len(fake_twilio.accepted(to=delivery.to, account_sid=FALLBACK_SID)) == 1
    assert len(fake_twilio.accepted(to=delivery.to)) == 1


def test_a_redelivered_task_never_sends_a_second_sms(celery_worker, fake_twilio, issuer):
    delivery = finished(create(issuer))
    again = [sms_send.delay(str(delivery.pk)).id for _ in range(2)]
    wait_for(lambda: all(f"sms.send[{task_id}] succeeded" in celery_worker.log_path.read_text() for task_id in again))
    assert len(fake_twilio.requests(to=delivery.to)) == 1
    assert reload(delivery).attempts.count() == 1


# ---------------------------------------------------------------- the code stays secret


def test_the_code_is_in_no_log_task_message_audit_event_or_admin_page(celery_worker, fake_twilio, issuer):
    code, to = "730519", new_number()
    published = []

    def capture(body=None, headers=None, routing_key=None, **kwargs):
        published.append(json.dumps([body, headers, routing_key], default=str))

    # Park this delivery's task in a queue nobody consumes, to read it raw from Redis.
    from issuer_portal.celery import app

    parked = f"sms-parked-{uuid.uuid4().hex[:8]}"
    routes = app.conf.task_routes
    before_task_publish.connect(capture)
    app.conf.update(task_routes={"sms.*": {"queue": parked}})  # update() rebuilds the router
    try:
        parked_delivery = create(issuer, to=to, code=code)
    finally:
        app.conf.update(task_routes=routes)
        before_task_publish.disconnect(capture)
    raw = _raw_queue(parked)
    assert len(raw) == 1
    envelope = json.loads(raw[0])
    args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
    assert (args, kwargs) == ([str(parked_delivery.pk)], {})
    assert published and all(code not in p and to not in p for p in published)
    assert code not in raw[0].decode() and to not in raw[0].decode()

    # The same delivery's text through the real worker, with a failure and a retry on the way.
    fake_twilio.program(PRIMARY_SID, "500", 21408)
    delivery = finished(create(issuer, to=to, code=code))
    assert fake_twilio.accepted(to=to)[0].body == otp_body(code)  # it was really sent
    fake_twilio.program(PRIMARY_SID, 21211)
    bad = finished(create(issuer, to=new_number(), code=code))
    assert bad.status == "failed"

    log = celery_worker.log_path.read_text()
    assert "sms.send[" in log and code not in log and to not in log
    assert all(code not in json.dumps(e.data) for e in AuditEvent.objects.all())
    client = Client()
    client.force_login(User.objects.create_superuser(username="root", password="x"))
    for url in (reverse("admin:sms_smsdelivery_changelist"), reverse("admin:sms_smsdelivery_change", args=[delivery.pk]),
                reverse("admin:sms_smsdelivery_change", args=[bad.pk])):
        html = client.get(url).content.decode()
        assert code not in html and to not in html


def _broker_prefix() -> str:
    return settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")


def _raw_queue(queue: str) -> list[bytes]:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        return client.lrange(_broker_prefix() + queue, 0, -1)
    finally:
        for key in client.scan_iter(match=f"{_broker_prefix()}*{queue}*"):
            client.delete(key)
        client.close()
