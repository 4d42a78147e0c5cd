"""Migrations 0002-0004 move push's own rows to the delivery engine's shape."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.push.models import PushAttempt, PushDelivery
from tests.push.conftest import make_device

BEFORE, AFTER = [("push", "0001_initial")], [("push", "0004_delivery_engine_cleanup")]


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    executor.loader.build_graph()
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_old_statuses_and_attempt_fields_are_mapped_to_the_engines(issuer):
    device = make_device(issuer=issuer)
    now = timezone.now()
    try:
        old = migrate(BEFORE)
        Delivery, Attempt = old.get_model("push", "PushDelivery"), old.get_model("push", "PushAttempt")
        common = {"issuer_id": issuer.pk, "device_id": device.pk, "platform": "fcm", "max_tries": 3}
        sending = Delivery.objects.create(acs_trans_id=uuid.uuid4(), status="sending", tries=1,
                                          next_attempt_at=now + timedelta(seconds=30), **common)
        failed = Delivery.objects.create(acs_trans_id=uuid.uuid4(), status="failed", tries=3, next_attempt_at=now,
                                         finished_at=now, provider="fcm", error_code="internal", **common)
        sent = Delivery.objects.create(acs_trans_id=uuid.uuid4(), status="sent", tries=1, provider="fcm",
                                       provider_message_id="projects/p/messages/1", finished_at=now, **common)
        Attempt.objects.create(delivery=sending, number=1, outcome="claimed", started_at=now)
        Attempt.objects.create(delivery=failed, number=3, outcome="failed_transient", started_at=now, error_code="internal",
                               error_class="TransientPushError")
        Attempt.objects.create(delivery=sent, number=1, outcome="succeeded", started_at=now, status_code=200)
    finally:
        migrate(AFTER)

    sending, failed, sent = (PushDelivery.objects.get(pk=d.pk) for d in (sending, failed, sent))
    # A claimed try: pending under the engine's lease, lapsing when the old claim did.
    assert (sending.status, sending.tries, sending.lease_expires_at) == ("pending", 1, sending.next_attempt_at)
    # Ended rows no longer use next_attempt_at; the unreported failure is the sweep's to report.
    assert (failed.status, failed.next_attempt_at, failed.undeliverable_reported_at) == ("failed", None, None)
    assert (sent.status, sent.next_attempt_at) == ("sent", None)
    attempts = {a.delivery_id: a for a in PushAttempt.objects.all()}
    assert attempts[sending.pk].state == "claimed"
    assert (attempts[failed.pk].state, attempts[failed.pk].error_code, attempts[failed.pk].error_message,
            attempts[failed.pk].provider) == ("failed_transient", "internal", "TransientPushError", "fcm")
    assert (attempts[sent.pk].state, attempts[sent.pk].provider_message_id) == ("succeeded", "projects/p/messages/1")
