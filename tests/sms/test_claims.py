"""Claiming tries: each try is claimed once, the first one in a single statement on PostgreSQL
(`claims = 0` on the delivery row), every other through the general path. Tests marked
`postgresql_only` drive the single-statement claim itself; the others hold on any database."""

import importlib

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from apps.sms import services
from apps.sms.models import FALLBACK, PRIMARY, TWILIO, SmsAttempt, SmsDelivery, SmsProviderConfig
from apps.sms.tasks import sms_send
from tests.concurrency import run_parallel
from tests.fakes.twilio_server import PRIMARY_SID
from tests.sms.conftest import CODE, new_number, otp_body, reload

pytestmark = pytest.mark.django_db


@pytest.fixture
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the single-statement first-try claim runs on PostgreSQL only")


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
    assert states(delivery) == [(PRIMARY, 1, "failed_transient"), (PRIMARY, 2, "succeeded")]
    assert delivery.claims == 2


def test_the_first_try_claim_gives_way_once_another_claim_was_counted(postgresql_only, issuer, fake_twilio):
    delivery = create(issuer)
    SmsDelivery.objects.filter(pk=delivery.pk).update(claims=1)  # claimed by someone else since it was created

    assert services._claim_first_try(delivery.pk, "task") is services._GENERAL
    assert delivery.attempts.count() == 0 and reload(delivery).claims == 1
    assert fake_twilio.requests(to=delivery.to) == []

    # The general path decides instead, and counts its own claim.
    delivery = run(delivery)
    assert states(delivery) == [(PRIMARY, 1, "succeeded")] and delivery.claims == 2
    assert len(fake_twilio.requests(to=delivery.to)) == 1


def test_a_first_try_claim_that_meets_an_existing_try_claims_nothing(postgresql_only, issuer, fake_twilio):
    # A delivery tried before claims were counted (or a row written by hand): try 1 exists.
    delivery = create(issuer)
    SmsAttempt.objects.create(delivery=delivery, provider_role=PRIMARY, provider=TWILIO, try_number=1,
                              started_at=timezone.now(), callback_token="t1")

    assert services._claim_first_try(delivery.pk, "task") is services._GENERAL
    assert states(delivery) == [(PRIMARY, 1, "claimed")]
    # ... and the general path leaves the try in flight alone.
    assert 0 < services.sms_delivery_send(delivery_id=delivery.pk) <= services.claim_lease_seconds() + 1
    assert fake_twilio.requests(to=delivery.to) == []


def test_a_delivery_wiped_before_its_first_claim_sends_nothing(issuer, fake_twilio):
    delivery = create(issuer)
    SmsDelivery.objects.filter(pk=delivery.pk).update(body_blob=None, body_key_id="")  # as the purge does

    delivery = run(delivery)
    assert (delivery.status, delivery.error_code) == ("failed", "expired")
    assert delivery.attempts.count() == 0 and fake_twilio.requests(to=delivery.to) == []


def test_a_redelivered_task_after_a_successful_try_sends_nothing(issuer, fake_twilio):
    delivery = run(create(issuer))
    claims = delivery.claims
    assert services.sms_delivery_send(delivery_id=delivery.pk, task_id="redelivered") is None
    assert len(fake_twilio.requests(to=delivery.to)) == 1
    assert states(reload(delivery)) == [(PRIMARY, 1, "succeeded")] and reload(delivery).claims == claims


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


def test_the_migration_counts_the_tries_of_pending_deliveries(issuer):
    count_claims = importlib.import_module("apps.sms.migrations.0003_delivery_claims").count_claims
    tried, untried, done = create(issuer), create(issuer), create(issuer)
    for number in (1, 2):
        SmsAttempt.objects.create(delivery=tried, provider_role=PRIMARY, provider=TWILIO, try_number=number,
                                  state="failed_transient", started_at=timezone.now(), callback_token=f"t{number}")
    SmsAttempt.objects.create(delivery=done, provider_role=PRIMARY, provider=TWILIO, try_number=1,
                              state="succeeded", started_at=timezone.now(), callback_token="t3")
    SmsDelivery.objects.filter(pk=done.pk).update(status="delivered")

    count_claims(apps, None)

    assert [reload(d).claims for d in (tried, untried, done)] == [2, 0, 0]
