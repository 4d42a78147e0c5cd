"""The push channel in this process: deliveries and tries recorded, retries bounded, the limit
per device, the engine's claim that makes a repeated task harmless, the sweep resuming lost work,
the OOB flow told exactly once. The worker tests (test_worker.py) do the same through a real
worker."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.delivery import engine
from apps.delivery.engine import backoff_seconds
from apps.devices.models import Device
from apps.push.models import PushAttempt, PushDelivery
from apps.push.services import PUSH_CHANNEL, push_authn_request, push_delivery_send
from tests.push.conftest import (
    create, make_device, needs_oob_hook, outcomes, reload, send_now, send_with_retries,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


def kinds(delivery) -> list[str]:
    return list(AuditEvent.objects.filter(object_id=str(delivery.pk)).order_by("id").values_list("kind", flat=True))


def test_a_push_is_recorded_in_the_callers_transaction_and_sent_after_commit(
    device, push_file, django_capture_on_commit_callbacks
):
    acs_trans_id = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            delivery = push_authn_request(device=device, acs_trans_id=acs_trans_id)
    assert (delivery.status, delivery.platform, delivery.issuer_id) == ("pending", "fcm", device.issuer_id)
    assert push_file.lines() == [] and len(callbacks) == 1
    callbacks[0]()
    [line] = push_file.lines()
    assert line["delivery_id"] == str(delivery.pk)
    assert line["data"] == {"type": "3ds_authn_request", "acsTransId": str(acs_trans_id)}
    delivery = reload(delivery)
    assert (delivery.status, delivery.tries, delivery.provider, delivery.next_attempt_at) == ("sent", 1, "file", None)
    assert delivery.provider_message_id == line["message_id"]
    assert outcomes(delivery) == ["succeeded"]
    assert kinds(delivery) == ["push.created", "push.sent"]


def test_a_rolled_back_caller_sends_nothing(device, push_file, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                push_authn_request(device=device, acs_trans_id=uuid.uuid4())
                raise RuntimeError("the challenge failed to start")
    assert push_file.lines() == [] and not PushDelivery.objects.exists()


def test_the_token_is_in_no_record_or_log_line(issuer, fake_fcm, caplog):
    token = "fcm-secret-token-" + "z" * 40
    device = make_device(issuer=issuer, push_token=token)
    fake_fcm.program(token, "invalid_argument")  # FCM's error text is kept (scrubbed) on the try
    failed = send_now(create(device))
    sent = send_now(create(device))
    assert (failed.status, sent.status) == ("failed", "sent")
    assert [m.push_token for m in fake_fcm.messages()] == [token, token]  # it was really used
    records = [json.dumps(e.data) for e in AuditEvent.objects.all()]
    records += [a.response_excerpt + a.error_code for d in (failed, sent) for a in d.attempts.all()]
    records += [f"{d.error_code} {d.error_message} {d.provider_message_id}" for d in (failed, sent)]
    assert records and all(token not in r for r in records)
    assert "push" in caplog.text and token not in caplog.text


def test_a_500_then_success_sends_exactly_one_push(device, fake_fcm):
    token = device.get_push_token()
    fake_fcm.program(token, "500")
    delivery = send_with_retries(create(device))
    assert delivery.status == "sent" and outcomes(delivery) == ["failed_transient", "succeeded"]
    assert [m.outcome for m in fake_fcm.messages(push_token=token)] == ["error 500", "accepted"]
    first = delivery.attempts.get(number=1)
    assert (first.status_code, first.error_code, first.state) == (500, "internal", "failed_transient")
    assert first.error_message and first.finished_at is not None and first.provider == "fcm"
    assert "INTERNAL" in first.response_excerpt
    assert delivery.provider_message_id == fake_fcm.accepted(push_token=token)[0].name


def test_a_timeout_is_a_failed_try(device, fake_fcm):
    token = device.get_push_token()
    fake_fcm.program(token, "hang")
    delivery = send_with_retries(create(device))
    assert outcomes(delivery) == ["failed_transient", "succeeded"]
    assert delivery.attempts.get(number=1).error_code == "timeout"


def test_a_retry_after_is_honoured(device, fake_fcm, settings):
    # The engine honours a Retry-After up to its backoff cap (0.5 s in tests): raise the cap.
    settings.OUTBOUND_BACKOFF_MAX_SECONDS = 2
    token = device.get_push_token()
    fake_fcm.program(token, "429:1")
    delivery = send_now(create(device))
    [first] = delivery.attempts.all()
    assert (first.status_code, first.error_code) == (429, "quota_exceeded")
    # Due again no sooner than the provider asked (the backoff alone would be under 0.5 s).
    assert delivery.status == "pending" and (delivery.next_attempt_at - first.finished_at).total_seconds() >= 1.0
    delivery = send_with_retries(delivery)
    assert outcomes(delivery) == ["failed_transient", "succeeded"]


def test_retry_delays_grow_with_jitter_and_stay_bounded(settings):
    settings.OUTBOUND_BACKOFF_BASE_SECONDS, settings.OUTBOUND_BACKOFF_MAX_SECONDS = 2, 300
    assert all(1 <= backoff_seconds(tries=1) <= 2 for _ in range(50))
    assert all(4 <= backoff_seconds(tries=3) <= 8 for _ in range(50))
    assert len({backoff_seconds(tries=3) for _ in range(20)}) > 1
    assert all(150 <= backoff_seconds(tries=30) <= 300 for _ in range(20))
    assert backoff_seconds(tries=1, retry_after=30) == 30


def test_an_unregistered_token_fails_at_once_without_a_retry(device, fake_fcm):
    token = device.get_push_token()
    fake_fcm.program(token, "unregistered")
    delivery = send_now(create(device))
    assert (delivery.status, delivery.error_code, delivery.tries) == ("failed", "unregistered", 1)
    assert outcomes(delivery) == ["failed_permanent"]
    assert len(fake_fcm.messages(push_token=token)) == 1
    assert kinds(delivery) == ["push.created", "push.failed"]


def test_tries_are_bounded(device, fake_fcm):
    token = device.get_push_token()
    fake_fcm.program(token, "500", "503", "500", "500")
    delivery = send_with_retries(create(device))
    assert (delivery.status, delivery.tries, delivery.max_tries, delivery.error_code) == ("failed", 3, 3, "internal")
    assert outcomes(delivery) == ["failed_transient"] * 3
    assert len(fake_fcm.messages(push_token=token)) == 3
    assert kinds(delivery) == ["push.created", "push.failed"]


def test_an_apns_device_is_not_reachable_through_fcm(apns_device, fake_fcm):
    delivery = send_now(create(apns_device))
    assert (delivery.status, delivery.error_code) == ("failed", "platform_unsupported")
    assert fake_fcm.messages() == []


def test_a_device_revoked_before_the_try_gets_no_push(device, push_file):
    delivery = create(device)  # not committed for real: the task runs below
    Device.objects.filter(pk=device.pk).update(status=Device.STATUS_REVOKED)
    delivery = send_now(delivery)
    assert (delivery.status, delivery.error_code) == ("failed", "device_inactive")
    assert push_file.lines() == []


def test_push_is_a_channel_of_the_delivery_engine_with_a_lease_for_three_requests(settings):
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 10
    assert engine.channel("push") is PUSH_CHANNEL
    assert PUSH_CHANNEL.task().name == "push.send"
    assert settings.CELERY_TASK_ROUTES["push.*"]["queue"] == "push"
    assert PUSH_CHANNEL.lease_seconds() == 65  # access token, send, send again after a 401
    assert "push-resume-stalled" not in settings.CELERY_BEAT_SCHEDULE


@needs_oob_hook
def test_an_undeliverable_push_is_reported_to_the_oob_flow_once(device, fake_fcm):
    fake_fcm.program(device.get_push_token(), "unregistered")
    delivery = send_now(create(device))
    assert delivery.status == "failed" and delivery.undeliverable_reported_at is not None
    assert delivery.next_attempt_at is None
    reported_at = delivery.undeliverable_reported_at
    send_now(delivery)
    assert reload(delivery).undeliverable_reported_at == reported_at


def test_a_failed_push_is_reported_exactly_once_in_the_transaction_that_ends_it(device, fake_fcm, reports):
    fake_fcm.program(device.get_push_token(), "unregistered")
    delivery = send_now(create(device))
    assert delivery.status == "failed" and delivery.undeliverable_reported_at is not None
    assert [(c["acs_trans_id"], c["device_id"], c["reason"]) for c in reports.calls] == [
        (delivery.acs_trans_id, device.pk, "push_failed")
    ]
    send_now(delivery)
    assert engine.sweep(grace_seconds=0)["push"] == 0
    assert len(reports.calls) == 1


def test_a_report_that_raises_undoes_the_end_and_the_sweep_tries_again(device, fake_fcm, reports):
    reports.failures = 1
    token = device.get_push_token()
    fake_fcm.program(token, "unregistered", "unregistered")
    delivery = send_now(create(device))
    # The receiver raised inside the transaction that ended the delivery: nothing of the end
    # committed. The delivery is pending with the lease of its first try.
    assert (delivery.status, delivery.tries, delivery.undeliverable_reported_at) == ("pending", 1, None)
    assert delivery.lease_expires_at is not None and outcomes(delivery) == ["claimed"]
    assert "push.failed" not in kinds(delivery) and len(reports.calls) == 1
    assert engine.sweep(grace_seconds=0)["push"] == 0  # leased: its worker may still be at it

    # The lease lapses: the sweep hands it to a worker, which tries again and reports it.
    long_ago = timezone.now() - timedelta(minutes=5)
    PushDelivery.objects.filter(pk=delivery.pk).update(lease_expires_at=long_ago, next_attempt_at=long_ago)
    assert engine.sweep(grace_seconds=0)["push"] == 1
    delivery = reload(delivery)
    assert (delivery.status, delivery.error_code) == ("failed", "unregistered")
    assert delivery.undeliverable_reported_at is not None
    assert outcomes(delivery) == ["interrupted", "failed_permanent"]
    assert len(reports.calls) == 2 and kinds(delivery) == ["push.created", "push.failed"]
    assert engine.sweep(grace_seconds=0)["push"] == 0 and len(reports.calls) == 2


def test_a_refused_push_is_reported_once_after_commit(device, push_file, settings, reports, django_capture_on_commit_callbacks):
    settings.PUSH_MAX_PER_DEVICE_PER_MINUTE = 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            create(device)
            refused = create(device)
            assert reports.calls == []  # never inside the creating transaction
    assert (refused.status, refused.next_attempt_at, refused.tries) == ("refused", None, 0)
    for callback in callbacks:
        callback()
    assert reload(refused).undeliverable_reported_at is not None
    assert [c["reason"] for c in reports.calls] == ["push_rate_limited"]
    assert engine.sweep(grace_seconds=0)["push"] == 0 and len(reports.calls) == 1


def test_a_refused_push_whose_report_was_lost_is_reported_by_the_sweep(device, push_file, settings, reports,
                                                                        django_capture_on_commit_callbacks):
    settings.PUSH_MAX_PER_DEVICE_PER_MINUTE = 1
    with django_capture_on_commit_callbacks(execute=False):  # the process died before its on-commit work
        create(device)
        refused = create(device)
    assert engine.sweep()["push"] == 0  # too recent: the on-commit work may be on its way
    assert reload(refused).undeliverable_reported_at is None and reports.calls == []
    PushDelivery.objects.filter(pk=refused.pk).update(finished_at=timezone.now() - timedelta(minutes=1))
    assert engine.sweep()["push"] == 1
    assert reload(refused).undeliverable_reported_at is not None
    assert [c["reason"] for c in reports.calls] == ["push_rate_limited"]
    assert engine.sweep(grace_seconds=0)["push"] == 1  # the first push's lost wake-up; not the refusal again
    assert len(reports.calls) == 1 and len(push_file.lines()) == 1


def test_a_refused_push_whose_report_raises_is_reported_by_the_sweep_exactly_once(
    device, push_file, settings, reports, django_capture_on_commit_callbacks
):
    settings.PUSH_MAX_PER_DEVICE_PER_MINUTE = 1
    reports.failures = 2  # after commit, and at the sweep's first pass
    with django_capture_on_commit_callbacks(execute=True):  # the caller's commit does not fail
        create(device)
        refused = create(device)
    assert reload(refused).undeliverable_reported_at is None and len(reports.calls) == 1
    assert engine.sweep(grace_seconds=0)["push"] == 0
    assert reload(refused).undeliverable_reported_at is None and len(reports.calls) == 2
    assert engine.sweep(grace_seconds=0)["push"] == 1
    assert reload(refused).undeliverable_reported_at is not None and len(reports.calls) == 3
    assert engine.sweep(grace_seconds=0)["push"] == 0 and len(reports.calls) == 3


# ---------------------------------------------------------------- claims


def test_a_repeated_task_after_success_sends_nothing(device, push_file):
    delivery = send_now(create(device))
    for _ in range(2):
        assert push_delivery_send(delivery_id=delivery.pk) is None
    assert len(push_file.lines()) == 1 and reload(delivery).attempts.count() == 1


def test_a_task_while_a_try_is_in_flight_sends_nothing_and_looks_again_later(device, push_file):
    delivery = create(device)
    PushDelivery.objects.filter(pk=delivery.pk).update(tries=1, lease_expires_at=timezone.now() + timedelta(seconds=10))
    wait = push_delivery_send(delivery_id=delivery.pk)
    assert 9 < wait <= 11 and push_file.lines() == []


def test_a_claim_whose_worker_died_is_taken_over_by_the_next_task(device, push_file):
    delivery = create(device)
    long_ago = timezone.now() - timedelta(minutes=5)
    PushDelivery.objects.filter(pk=delivery.pk).update(tries=1, next_attempt_at=long_ago, lease_expires_at=long_ago)
    PushAttempt.objects.create(delivery=delivery, number=1, started_at=long_ago, task_id="dead")
    delivery = send_now(delivery)
    assert delivery.status == "sent" and outcomes(delivery) == ["interrupted", "succeeded"]
    assert len(push_file.lines()) == 1


def test_a_last_try_whose_worker_died_fails_the_delivery(device, push_file):
    delivery = create(device)
    long_ago = timezone.now() - timedelta(minutes=5)
    PushDelivery.objects.filter(pk=delivery.pk).update(tries=delivery.max_tries, next_attempt_at=long_ago, lease_expires_at=long_ago)
    PushAttempt.objects.create(delivery=delivery, number=delivery.max_tries, started_at=long_ago)
    delivery = send_now(delivery)
    assert (delivery.status, delivery.error_code) == ("failed", "interrupted")
    assert outcomes(delivery) == ["interrupted"] and push_file.lines() == []
    assert kinds(delivery) == ["push.created", "push.failed"]


def test_the_delivery_sweep_resumes_a_push_whose_task_was_lost(device, push_file, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the task is never enqueued
        delivery = create(device)
    assert engine.sweep()["push"] == 0  # not overdue yet: its task may be on its way
    PushDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=1))
    assert engine.sweep()["push"] == 1
    assert reload(delivery).status == "sent" and len(push_file.lines()) == 1
    assert engine.sweep()["push"] == 0


# ---------------------------------------------------------------- push bombing


def test_at_most_the_limit_per_device_per_minute(device, push_file, settings, django_capture_on_commit_callbacks):
    settings.PUSH_MAX_PER_DEVICE_PER_MINUTE = 3
    with django_capture_on_commit_callbacks(execute=True):
        deliveries = [create(device) for _ in range(5)]
    assert [d.status for d in deliveries] == ["pending"] * 3 + ["refused"] * 2
    refused = reload(deliveries[3])
    assert (refused.error_code, refused.tries, refused.finished_at is not None) == ("rate_limited", 0, True)
    assert refused.attempts.count() == 0
    assert kinds(refused) == ["push.refused"]
    assert AuditEvent.objects.get(kind="push.refused", object_id=str(refused.pk)).data["reason"] == "rate_limited"
    assert len(push_file.lines()) == 3

    # Another device of the same cardholder has its own budget.
    other = make_device(issuer=device.issuer, cardholder=device.cardholder)
    assert create(other).status == "pending"

    # A minute later the device may be woken again; refused ones never counted.
    PushDelivery.objects.filter(device=device).update(created_at=timezone.now() - timedelta(seconds=61))
    assert create(device).status == "pending"


@needs_oob_hook
def test_a_refused_push_is_reported_to_the_oob_flow(device, push_file, settings, django_capture_on_commit_callbacks):
    settings.PUSH_MAX_PER_DEVICE_PER_MINUTE = 1
    with django_capture_on_commit_callbacks(execute=True):
        create(device)
        refused = create(device)
    assert reload(refused).undeliverable_reported_at is not None


def test_an_early_task_sends_nothing_and_comes_back_when_the_try_is_due(device, push_file):
    delivery = create(device)
    PushDelivery.objects.filter(pk=delivery.pk).update(tries=1, next_attempt_at=timezone.now() + timedelta(seconds=5))
    wait = push_delivery_send(delivery_id=delivery.pk)
    assert 4 < wait <= 5.2 and push_file.lines() == [] and reload(delivery).status == "pending"
