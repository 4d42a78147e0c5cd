"""Claiming SMS tries on the delivery engine: each try is claimed once by one conditional UPDATE
(pending, due, lease free, tries left), and counted on the delivery. Tests marked
`postgresql_only` race real connections; the others hold on any database."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.delivery import engine
from apps.sms import services
from apps.sms.models import FALLBACK, PRIMARY, TWILIO, SmsAttempt, SmsDelivery, SmsProviderConfig
from apps.sms.tasks import sms_send
from tests.concurrency import run_parallel
from tests.fakes.twilio_server import PRIMARY_SID
from tests.sms.conftest import CODE, new_number, otp_body, reload
from tests.support.delivery import sweep_until_settled

pytestmark = pytest.mark.django_db


@pytest.fixture
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("racing connections need PostgreSQL")


def create(issuer) -> SmsDelivery:
    return services.sms_delivery_create(issuer=issuer, to=new_number(), body=otp_body(), secret=CODE)


def run(delivery) -> SmsDelivery:
    sms_send.apply(args=[str(delivery.pk)])
    return reload(delivery)


def states(delivery) -> list[tuple[str, int, str]]:
    return [(a.provider_role, a.try_number, a.state) for a in delivery.attempts.order_by("started_at", "id")]


def test_every_claim_is_counted_on_the_delivery(issuer, fake_twilio):
    fake_twilio.program(PRIMARY_SID, "500")
    delivery = run(create(issuer))
    sweep_until_settled("sms")  # the retry, as the sweep makes it in process
    delivery = reload(delivery)
    assert states(delivery) == [(PRIMARY, 1, "failed_transient"), (PRIMARY, 2, "succeeded")]
    assert [a.number for a in delivery.attempts.order_by("number")] == [1, 2]
    assert delivery.tries == 2 and delivery.lease_expires_at is None


def test_a_claim_meets_a_live_lease_and_takes_nothing(issuer, fake_twilio):
    delivery = create(issuer)
    assert engine.claim(services.SMS_CHANNEL, delivery.pk).tries == 1  # someone else's claim
    assert engine.claim(services.SMS_CHANNEL, delivery.pk) is None
    assert reload(delivery).tries == 1 and delivery.attempts.count() == 0
    assert fake_twilio.requests(to=delivery.to) == []


def test_a_claim_takes_over_once_the_lease_lapsed(issuer, fake_twilio):
    delivery = create(issuer)
    engine.claim(services.SMS_CHANNEL, delivery.pk)
    SmsDelivery.objects.filter(pk=delivery.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    delivery = run(delivery)
    assert states(delivery) == [(PRIMARY, 1, "succeeded")] and delivery.tries == 2
    assert len(fake_twilio.requests(to=delivery.to)) == 1


def test_a_delivery_wiped_before_its_first_claim_sends_nothing(issuer, fake_twilio):
    delivery = create(issuer)
    SmsDelivery.objects.filter(pk=delivery.pk).update(body_blob=None, body_key_id="")  # as the purge does

    delivery = run(delivery)
    assert (delivery.status, delivery.error_code) == ("failed", "expired")
    assert delivery.attempts.count() == 0 and fake_twilio.requests(to=delivery.to) == []


def test_a_redelivered_task_after_a_successful_try_sends_nothing(issuer, fake_twilio):
    delivery = run(create(issuer))
    tries = delivery.tries
    assert services.sms_delivery_send(delivery_id=delivery.pk, task_id="redelivered") is None
    assert len(fake_twilio.requests(to=delivery.to)) == 1
    assert states(reload(delivery)) == [(PRIMARY, 1, "succeeded")] and reload(delivery).tries == tries


def test_a_primary_row_with_a_backend_this_code_does_not_know_leaves_the_first_try_to_the_fallback(issuer, fake_twilio):
    SmsProviderConfig.objects.create(issuer=issuer, role=PRIMARY, backend="retired")
    delivery = run(create(issuer))
    assert states(delivery) == [(FALLBACK, 1, "succeeded")]
    assert delivery.provider == "fallback:twilio"


def test_without_any_primary_provider_the_fallback_sends_the_first_try(issuer, fake_twilio, settings):
    settings.SMS_BACKEND = ""
    delivery = run(create(issuer))
    assert states(delivery) == [(FALLBACK, 1, "succeeded")]


def test_the_first_try_uses_the_issuers_primary_account(issuer, fake_twilio):
    config = SmsProviderConfig(issuer=issuer, role=PRIMARY, backend=TWILIO, account_sid=PRIMARY_SID, from_number="MYBANK")
    config.set_auth_token(fake_twilio.accounts[PRIMARY_SID])
    config.save()
    delivery = run(create(issuer))
    [request] = fake_twilio.accepted(to=delivery.to)
    assert (request.account_sid, request.form["From"]) == (PRIMARY_SID, "MYBANK")
    assert delivery.attempts.get().account_sid == PRIMARY_SID


@pytest.mark.django_db(transaction=True)
def test_tasks_racing_for_one_delivery_send_one_sms(postgresql_only, issuer, fake_twilio, monkeypatch):
    monkeypatch.setattr(services, "sms_delivery_enqueue", lambda **kwargs: None)  # no worker gets it
    with transaction.atomic():
        delivery = create(issuer)

    run_parallel(4, lambda i: services.sms_delivery_send(delivery_id=delivery.pk, task_id=f"task-{i}"))

    assert len(fake_twilio.requests(to=delivery.to)) == 1
    assert states(reload(delivery)) == [(PRIMARY, 1, "succeeded")]
    assert reload(delivery).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_of_claimers_racing_for_one_try_exactly_one_wins(postgresql_only, issuer, monkeypatch):
    # Not woken: a live worker (the session's) would otherwise claim the first try before the threads.
    monkeypatch.setattr(services, "sms_delivery_enqueue", lambda **kwargs: None)
    with transaction.atomic():
        delivery = create(issuer)
    for _ in range(3):  # three tries in a row, each raced for by 8 threads
        won = run_parallel(8, lambda i: engine.claim(services.SMS_CHANNEL, delivery.pk) is not None)
        assert sum(won) == 1
        SmsDelivery.objects.filter(pk=delivery.pk).update(lease_expires_at=None)
    assert reload(delivery).tries == 3
