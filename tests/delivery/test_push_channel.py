"""Push on the delivery engine: a registered channel, and a try lost with its worker (killed
mid-send, or its task lost) resumed by the engine's sweep, exactly once per try. The first tests
run on any database in this process; the last kills a real worker (Redis, PostgreSQL, the FCM
adapter against the fake FCM)."""

import signal
import time
import uuid
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from apps.delivery import engine
from apps.push.models import PushAttempt, PushDelivery
from apps.push.services import PUSH_CHANNEL
from tests.conftest import wait_for
from tests.delivery import faults
from tests.push.conftest import (  # noqa: F401  (fixtures)
    create, device, eager_tasks, fake_fcm, make_device, outcomes, push_file, reload,
)


def test_push_is_a_registered_channel_on_its_own_queue():
    assert engine.channel("push") is PUSH_CHANNEL
    assert (PUSH_CHANNEL.delivery_model, PUSH_CHANNEL.attempt_model) == (PushDelivery, PushAttempt)
    assert PUSH_CHANNEL.task().name == "push.send"
    assert settings.CELERY_TASK_ROUTES["push.*"]["queue"] == "push"
    # Its lease covers three requests (access token, send, again after a 401), not the default one.
    assert PUSH_CHANNEL.lease_seconds() > engine.Channel.lease_seconds(PUSH_CHANNEL)
    # Nothing of push's own resume machinery is scheduled any more: the delivery sweep covers it.
    assert [e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].startswith("push.")] == []


def _killed_mid_try(delivery, *, lapsed: bool):
    """The rows a worker leaves when it is killed while its try is at the provider."""
    started = timezone.now() - timedelta(seconds=PUSH_CHANNEL.lease_seconds() + 5)
    lease = started + timedelta(seconds=PUSH_CHANNEL.lease_seconds()) if lapsed else timezone.now() + timedelta(seconds=30)
    PushDelivery.objects.filter(pk=delivery.pk).update(tries=1, next_attempt_at=started, lease_expires_at=lease)
    PushAttempt.objects.create(delivery=delivery, number=1, started_at=started, task_id="killed", provider="file")


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_push_try_killed_mid_send_is_resumed_by_the_sweep_once_its_lease_lapsed(device, push_file,
                                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        delivery = create(device)
    _killed_mid_try(delivery, lapsed=False)
    assert engine.sweep()["push"] == 0  # leased: its worker may still be talking to FCM
    assert push_file.lines() == [] and outcomes(reload(delivery)) == ["claimed"]

    PushDelivery.objects.filter(pk=delivery.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    assert engine.sweep()["push"] == 1
    delivery = reload(delivery)
    assert (delivery.status, delivery.tries, delivery.lease_expires_at) == ("sent", 2, None)
    assert outcomes(delivery) == ["interrupted", "succeeded"] and len(push_file.lines()) == 1
    assert engine.sweep(grace_seconds=0)["push"] == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_a_push_whose_wake_up_was_lost_is_sent_by_the_sweep(device, push_file, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the broker lost the task
        delivery = create(device)
    PushDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=30))
    assert engine.sweep()["push"] == 1
    assert reload(delivery).status == "sent" and outcomes(reload(delivery)) == ["succeeded"]
    assert len(push_file.lines()) == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_push_is_taken_over_by_the_sweep_exactly_once_per_try(
    celery_worker, fake_fcm, issuer, tmp_path
):
    prefix = f"{faults.broker_prefix()}pushkill-{uuid.uuid4().hex[:8]}:"
    device = make_device(issuer=issuer)
    token = device.get_push_token()
    fake_fcm.program(token, "hang")  # try 1 waits at FCM: the worker dies meanwhile
    hang_seconds, fake_fcm.hang_seconds = fake_fcm.hang_seconds, 8.0
    # The row alone (the outbox), woken on the workers' own broker prefix.
    delivery = PushDelivery.objects.create(issuer=issuer, device=device, acs_trans_id=uuid.uuid4(),
                                           platform=device.push_platform, max_tries=3, next_attempt_at=timezone.now())
    # A 2 s timeout: a lease of 6 × 2 + 5 = 17 s, longer than the hang, which outlives the kill.
    worker_env = {**fake_fcm.env(), "OUTBOUND_HTTP_TIMEOUT_SECONDS": "2"}
    workers = []
    try:
        workers.append(faults.start_worker("pushkill-a", prefix, tmp_path / "a.log", queues="push", **worker_env))
        publisher = Celery("push-kill-test", broker=settings.CELERY_BROKER_URL, set_as_current=False)
        publisher.conf.broker_transport_options = {"global_keyprefix": prefix}
        publisher.send_task("push.send", args=[str(delivery.pk)], queue="push")
        publisher.close()

        wait_for(lambda: fake_fcm.messages(push_token=token), timeout=60)
        faults.stop(workers[0], signal.SIGKILL)
        killed = time.monotonic()
        claimed = reload(delivery)
        assert (claimed.status, claimed.tries, outcomes(claimed)) == ("pending", 1, ["claimed"])
        assert claimed.lease_expires_at > timezone.now()

        # A new worker with the sweep; the killed worker's message stays unacknowledged in Redis
        # (visibility timeout: an hour): the lease and the sweep alone bring the push back.
        workers.append(faults.start_worker("pushkill-b", prefix, tmp_path / "b.log", queues="push,timeouts",
                                           sweep=True, **worker_env))
        done = wait_for(lambda: (d := reload(delivery)).status != PushDelivery.PENDING and d, timeout=60)
        again = time.monotonic() - killed
    except BaseException:
        for name in ("a.log", "b.log"):
            if (tmp_path / name).exists():
                print(f"---- worker {name}\n" + (tmp_path / name).read_text()[-4000:])
        raise
    finally:
        for worker in workers:
            faults.stop(worker)
        faults.delete_prefix(prefix)
        fake_fcm.hang_seconds = hang_seconds

    print(f"push worker killed mid-send: sent again {again:.1f} s after the kill")
    assert done.status == "sent" and outcomes(done) == ["interrupted", "succeeded"]
    # Exactly one request per try: the one the killed worker was waiting on, the good one.
    assert [m.outcome for m in fake_fcm.messages(push_token=token)] == ["hung", "accepted"]
