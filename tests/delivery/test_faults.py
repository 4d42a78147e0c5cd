"""The delivery engine under faults, with real workers, Redis, PostgreSQL and the real twilio
client against the fake Twilio server; every test counts the requests the provider received:
none missing, none doubled. Skipped without CELERY_BROKER_URL and a PostgreSQL DATABASE_URL."""

import json
import signal
import socket
import subprocess
import time
import uuid

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.sms.models import FALLBACK, PRIMARY, SmsDelivery
from apps.sms.services import mask_phone, sms_delivery_create
from tests.conftest import wait_for
from tests.delivery import faults
from tests.fakes.twilio_server import FALLBACK_SID, PRIMARY_SID
from tests.sms.conftest import CODE, new_number, otp_body, reload

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def states(delivery):
    return [(a.provider_role, a.try_number, a.state) for a in delivery.attempts.order_by("number")]


def test_with_the_broker_down_at_commit_the_otp_sms_still_reaches_the_provider_within_10_s(
    celery_worker, fake_twilio, issuer
):
    to = new_number()
    with faults.web_broker("redis://127.0.0.1:1/0"):  # nothing listens there
        with transaction.atomic():
            delivery = sms_delivery_create(issuer=issuer, to=to, body=otp_body(), secret=CODE)
        committed = time.monotonic()
        [request] = fake_twilio.wait_for_requests(1, to=to, timeout=10)
        elapsed = time.monotonic() - committed
    print(f"broker down at commit: at the provider {elapsed:.2f} s after the commit")
    assert elapsed < 10
    delivery = wait_for(lambda: (d := reload(delivery)).status != SmsDelivery.PENDING and d, timeout=10)
    assert delivery.status == "queued" and request.outcome == "accepted"
    # Sent in this process, once; the sweep and the worker found nothing left to do.
    attempt = delivery.attempts.get()
    assert (attempt.state, attempt.task_id) == ("succeeded", "in-process")
    time.sleep(2 * settings.DELIVERY_SWEEP_GRACE_SECONDS)
    assert len(fake_twilio.requests(to=to)) == 1


def test_with_a_hung_broker_at_commit_the_otp_sms_still_reaches_the_provider_within_10_s(
    celery_worker, fake_twilio, issuer
):
    # The broker accepts the connection and never answers: without the transport's socket
    # timeouts the publish would wait for minutes and the SMS with it.
    to = new_number()
    with faults.silent_broker() as url, faults.web_broker(url):
        started = time.monotonic()  # the wake-up runs inside the commit: the request waits for it
        with transaction.atomic():
            delivery = sms_delivery_create(issuer=issuer, to=to, body=otp_body(), secret=CODE)
        print(f"hung broker at commit: the commit returned after {time.monotonic() - started:.2f} s")
        [request] = fake_twilio.wait_for_requests(1, to=to, timeout=10)
        elapsed = time.monotonic() - started
    print(f"hung broker at commit: at the provider {elapsed:.2f} s after the request began")
    assert elapsed < 10
    delivery = wait_for(lambda: (d := reload(delivery)).status != SmsDelivery.PENDING and d, timeout=10)
    assert delivery.attempts.get().task_id == "in-process"
    time.sleep(2 * settings.DELIVERY_SWEEP_GRACE_SECONDS)
    assert len(fake_twilio.requests(to=to)) == 1


def test_a_worker_killed_mid_send_is_taken_over_within_30_s_exactly_once_per_try(celery_worker, fake_twilio, issuer, tmp_path):
    prefix = f"{faults.broker_prefix()}smskill-{uuid.uuid4().hex[:8]}:"
    worker_env = fake_twilio.env()
    to = new_number()
    fake_twilio.program(PRIMARY_SID, "hold")  # try 1 hangs until released: the worker dies meanwhile

    # The row alone (the outbox), woken on the workers' own broker prefix.
    delivery = SmsDelivery(issuer=issuer, to=to, masked_to=mask_phone(to), next_attempt_at=timezone.now(),
                           max_tries=2 * settings.OUTBOUND_MAX_TRIES)
    delivery.seal_body(json.dumps({"body": otp_body(), "secret": CODE}))
    delivery.save()

    workers = []
    try:
        # The production timeout: the worker is killed while the request is in flight.
        workers.append(faults.start_worker("smskill-a", prefix, tmp_path / "a.log",
                                           **{**worker_env, "OUTBOUND_HTTP_TIMEOUT_SECONDS": "5"}))
        publisher = Celery("sms-kill-test", broker=settings.CELERY_BROKER_URL, set_as_current=False)
        publisher.conf.broker_transport_options = {"global_keyprefix": prefix}
        publisher.send_task("sms.send", args=[str(delivery.pk)], queue="sms")
        publisher.close()

        fake_twilio.wait_for_requests(1, to=to, timeout=60)
        assert states(reload(delivery)) == [(PRIMARY, 1, "claimed")]
        faults.stop(workers[0], signal.SIGKILL)
        killed = time.monotonic()

        # A new worker, with the sweep; the killed worker's message stays unacknowledged in Redis
        # (visibility timeout: an hour): the lease and the sweep alone bring the SMS back.
        workers.append(faults.start_worker("smskill-b", prefix, tmp_path / "b.log", sweep=True, **worker_env))
        fake_twilio.wait_for_requests(2, to=to, timeout=30)
        again = time.monotonic() - killed
        done = wait_for(lambda: (d := reload(delivery)).status != SmsDelivery.PENDING and d, timeout=30)
    except BaseException:
        for name in ("a.log", "b.log"):
            if (tmp_path / name).exists():
                print(f"---- worker {name}\n" + (tmp_path / name).read_text()[-4000:])
        raise
    finally:
        fake_twilio.release()
        for worker in workers:
            faults.stop(worker)
        faults.delete_prefix(prefix)

    print(f"worker killed mid-send: handed to the provider again {again:.1f} s after the kill")
    assert again < 30
    assert done.status == "queued"
    assert states(done) == [(PRIMARY, 1, "interrupted"), (PRIMARY, 2, "succeeded")]
    # Exactly one request per try: the one the killed worker was waiting on, the good one.
    assert [r.outcome for r in fake_twilio.requests(to=to)] == ["held", "accepted"]


# What the provider answered, as the attempt that sent the request records it.
ROLE_OF_ACCOUNT = {PRIMARY_SID: PRIMARY, FALLBACK_SID: FALLBACK}
STATE_OF_OUTCOME = {"accepted": "succeeded", "error 503": "failed_transient"}


def test_with_the_provider_failing_30_percent_of_calls_every_sms_is_sent_one_request_per_try(
    celery_worker, fake_twilio, issuer
):
    count = 12
    # Deterministic ~30 %: every third request of each account a transient 503, for as many
    # requests as the first tries and their retries need; then "ok".
    for account in (PRIMARY_SID, FALLBACK_SID):
        fake_twilio.program(account, *["503", "ok", "ok"] * count)
    numbers = [new_number() for _ in range(count)]
    deliveries = []
    for to in numbers:
        with transaction.atomic():
            deliveries.append(sms_delivery_create(issuer=issuer, to=to, body=otp_body(), secret=CODE))

    done = [wait_for(lambda d=d: (r := reload(d)).status != SmsDelivery.PENDING and r, timeout=60)
            for d in deliveries]

    failures = [r for r in fake_twilio.requests() if r.outcome == "error 503"]
    assert len(failures) >= count // 3  # the first tries alone met a 503 every third request
    for delivery in done:
        assert delivery.status == "queued"
        requests = fake_twilio.requests(to=delivery.to)
        seen = [(ROLE_OF_ACCOUNT[r.account_sid], STATE_OF_OUTCOME[r.outcome]) for r in requests]
        recorded = [(role, state) for role, _try, state in states(delivery)]
        # One request per recorded try, in order, none doubled; exactly one accepted.
        assert seen == recorded
        assert [r.outcome for r in requests].count("accepted") == 1


def free_port(start: int = 6390) -> int:
    for port in range(start, start + 100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port for a test Redis")


def start_redis(port: int) -> subprocess.Popen:
    """A Redis of this test's own, without persistence: a restart loses every message in it."""
    process = subprocess.Popen(["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--daemonize", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: _answers(client), timeout=20)
    finally:
        client.close()
    return process


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def test_with_redis_restarted_mid_run_every_otp_sms_reaches_the_provider_exactly_once(
    celery_worker, fake_twilio, issuer, tmp_path
):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    prefix = f"redisrestart-{uuid.uuid4().hex[:8]}:"
    server = start_redis(port)
    worker = None
    numbers = []

    def create(count):
        for _ in range(count):
            numbers.append(new_number())
            with transaction.atomic():
                sms_delivery_create(issuer=issuer, to=numbers[-1], body=otp_body(), secret=CODE)

    try:
        worker = faults.start_worker("redisrestart", prefix, tmp_path / "worker.log", sweep=True, broker_url=url,
                                     **fake_twilio.env())
        with faults.web_broker(url, prefix):
            create(8)  # woken through this Redis
            fake_twilio.wait_for_requests(1, timeout=60)
            server.terminate()  # mid-run: the wake-ups still in it are lost with it
            server.wait(timeout=20)
            create(4)  # while it is down
            time.sleep(2)
            server = start_redis(port)  # the same address, empty
            create(4)  # after the restart
            restarted = time.monotonic()
            found = fake_twilio.wait_for_requests(len(numbers), timeout=60)
        print(f"redis restarted: all {len(numbers)} SMS at the provider {time.monotonic() - restarted:.1f} s "
              f"after the restart")
        wait_for(lambda: not SmsDelivery.objects.filter(to__in=numbers, status=SmsDelivery.PENDING).exists(),
                 timeout=60)
        time.sleep(2 * settings.DELIVERY_SWEEP_GRACE_SECONDS)  # a late double would show now
    except BaseException:
        if (tmp_path / "worker.log").exists():
            print("---- worker\n" + (tmp_path / "worker.log").read_text()[-4000:])
        raise
    finally:
        if worker is not None:
            faults.stop(worker)
        server.terminate()
        server.wait(timeout=20)

    assert len(found) >= len(numbers)
    # Every SMS exactly once: one request per number, accepted; none missing, none doubled.
    assert sorted(r.to for r in fake_twilio.requests()) == sorted(numbers)
    assert {r.outcome for r in fake_twilio.requests()} == {"accepted"}
    assert set(SmsDelivery.objects.filter(to__in=numbers).values_list("status", flat=True)) == {"queued"}
