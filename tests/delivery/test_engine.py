"""The delivery engine's own rules, on any database: backoff bounds with jitter and Retry-After,
and how each channel's adapter classifies an answer (success / transient / permanent). The claim
races are in tests/sms/test_claims.py (PostgreSQL, threads)."""

import pytest
from django.test import override_settings

from apps.delivery import engine
from apps.sms.providers import classify_twilio_error, PermanentSmsError, TransientSmsError
from apps.webhooks.services import OK, PERMANENT, TRANSIENT, classify_status


@override_settings(OUTBOUND_BACKOFF_BASE_SECONDS=2, OUTBOUND_BACKOFF_MAX_SECONDS=300)
def test_backoff_grows_exponentially_with_jitter_up_to_the_max():
    for tries, full in [(1, 2), (2, 4), (3, 8), (6, 64), (9, 300), (60_000, 300)]:
        delays = {engine.backoff_seconds(tries=tries) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays)
        assert len(delays) > 1  # jittered


@override_settings(OUTBOUND_BACKOFF_BASE_SECONDS=2, OUTBOUND_BACKOFF_MAX_SECONDS=300)
def test_retry_after_is_honoured_up_to_the_max():
    assert engine.backoff_seconds(tries=1, retry_after=30) == 30
    assert engine.backoff_seconds(tries=1, retry_after=3600) == 300
    assert 1 <= engine.backoff_seconds(tries=1, retry_after=0) <= 2  # never sooner than the backoff


@override_settings(OUTBOUND_BACKOFF_BASE_SECONDS=2, OUTBOUND_BACKOFF_MAX_SECONDS=300,
                   CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 100})
def test_every_wait_stays_below_half_the_visibility_timeout():
    assert engine.backoff_seconds(tries=20) <= 50
    assert engine.backoff_seconds(tries=1, retry_after=3600) <= 50


@pytest.mark.parametrize("status, code, kind", [
    (500, 20500, TransientSmsError), (503, None, TransientSmsError), (429, 20429, TransientSmsError),
    (400, 21211, PermanentSmsError), (400, 21614, PermanentSmsError), (401, 20003, PermanentSmsError),
])
def test_sms_twilio_answers_are_classified(status, code, kind):
    assert isinstance(classify_twilio_error(status, code, "x"), kind)


def test_sms_an_invalid_number_is_final_for_every_provider():
    error = classify_twilio_error(400, 21211, "invalid 'To'")
    assert isinstance(error, PermanentSmsError) and error.recipient


@pytest.mark.parametrize("status_code, outcome", [(200, OK), (204, OK), (503, TRANSIENT), (429, TRANSIENT),
                                                  (404, PERMANENT), (302, PERMANENT)])
def test_webhook_answers_are_classified(status_code, outcome):
    assert classify_status(status_code) == outcome


def test_every_channel_is_registered_with_its_own_queue():
    from django.conf import settings

    names = {ch.name for ch in engine.channels()}
    assert {"sms", "webhooks", "rreq", "push"} <= names
    for ch in engine.channels():
        assert settings.CELERY_TASK_ROUTES[f"{ch.name}.*"]["queue"] == ch.name
        assert ch.task().name.startswith(f"{ch.name}.")
        # A killed worker's message is redelivered (the claim makes that harmless).
        assert ch.task().acks_late and ch.task().reject_on_worker_lost


def test_with_the_broker_down_in_process_deliveries_run_at_most_eight_at_once(monkeypatch):
    # A sweep meeting a dead broker wakes every overdue delivery in process: each holds a database
    # connection while it runs, so hundreds at once would exhaust the server's connections.
    import threading
    import time

    running, most, done = [0], [0], []
    lock = threading.Lock()

    def a_slow_try(ch, delivery_id, *, task_id=""):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
            done.append(delivery_id)
        return None  # the delivery ended

    class Refused:
        def apply_async(self, *args, **kwargs):
            raise ConnectionRefusedError("broker down")

    class DownChannel:
        name = "sms"  # deliver_in_process looks the channel up by name

        def task(self):
            return Refused()

    monkeypatch.setattr(engine, "deliver", a_slow_try)
    before = set(threading.enumerate())
    for number in range(40):
        engine.wake(DownChannel(), f"delivery-{number}")
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=30)
    assert sorted(done) == sorted(f"delivery-{n}" for n in range(40))
    assert 1 < most[0] <= 8


@pytest.mark.parametrize("waits, tries, scheduled", [
    ([5.0, None], 1, [5.0]),  # a backoff: one try, the next one scheduled
    ([0.0, 5.0, None], 2, [5.0]),  # the next provider at once, then a backoff
    ([engine.IN_PROCESS_MAX_WAIT + 1, None], 1, []),  # too far off: the sweep's
    ([None], 1, []),  # ended
])
def test_with_the_broker_down_a_retry_is_scheduled_not_slept(monkeypatch, waits, tries, scheduled):
    # The in-process thread used to sleep through the backoff holding one of the eight slots (and
    # a connection): eight deliveries backing off stalled every other one, OTPs included.
    import threading

    calls, later = [], []

    def a_try(ch, delivery_id, *, task_id=""):
        calls.append(delivery_id)
        return waits[len(calls) - 1]

    monkeypatch.setattr(engine, "deliver", a_try)
    monkeypatch.setattr(engine, "_later", lambda seconds, function, *args: later.append((seconds, function, args)))
    thread = threading.Thread(target=engine.deliver_in_process, args=("sms", "delivery-1"))
    thread.start()
    thread.join(timeout=30)

    assert not thread.is_alive() and len(calls) == tries
    assert [seconds for seconds, _, _ in later] == scheduled
    assert all(args == ("sms", "delivery-1") and function is engine.deliver_in_process for _, function, args in later)
    # Every slot is free again while the retry waits.
    assert all(engine._in_process_slots.acquire(blocking=False) for _ in range(8))
    for _ in range(8):
        engine._in_process_slots.release()
