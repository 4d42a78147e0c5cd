"""Deliveries and tries in this process (SQLite or PostgreSQL, no worker): the task body runs
with `sms_send.apply`, the real twilio client talks to the fake server."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError
from apps.delivery import engine
from apps.sms import services
from apps.sms.models import FALLBACK, FILE, PRIMARY, TWILIO, SmsAttempt, SmsDelivery, SmsProviderConfig
from apps.sms.tasks import sms_send
from tests.fakes.twilio_server import FALLBACK_SID, PRIMARY_SID, PRIMARY_TOKEN
from tests.sms.conftest import CODE, new_number, otp_body, reload
from tests.support.delivery import sweep_until_settled

pytestmark = pytest.mark.django_db


def create(issuer, to=None, **kwargs) -> SmsDelivery:
    return services.sms_delivery_create(
        issuer=issuer, to=new_number() if to is None else to, body=kwargs.pop("body", otp_body()), secret=kwargs.pop("secret", CODE), **kwargs
    )


def run(delivery) -> SmsDelivery:
    """The task, then its retries as the sweep makes them in process (without the backoffs)."""
    sms_send.apply(args=[str(delivery.pk)])
    sweep_until_settled("sms")
    return reload(delivery)


def states(delivery) -> list[tuple[str, int, str]]:
    return [(a.provider_role, a.try_number, a.state) for a in delivery.attempts.order_by("started_at", "id")]


# ---------------------------------------------------------------- creating


def test_create_stores_the_body_only_encrypted_and_enqueues_the_id_after_commit(issuer, django_capture_on_commit_callbacks):
    to = new_number()
    with django_capture_on_commit_callbacks() as callbacks:
        delivery = create(issuer, to=to, sender_id="MYBANK")
    assert len(callbacks) == 1
    assert delivery.status == SmsDelivery.PENDING
    assert delivery.masked_to == f"+81 ••• •••• {to[-4:]}"
    assert json.loads(delivery.unseal_body()) == {"body": otp_body(), "secret": CODE}
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM sms_smsdelivery")
        raw = repr(cursor.fetchall())
    assert CODE not in raw and CODE.encode().hex() not in raw


def test_a_body_sealed_for_one_delivery_does_not_open_in_another(issuer):
    first, second = create(issuer), create(issuer)
    second.body_key_id, second.body_blob = first.body_key_id, first.body_blob
    with pytest.raises(Exception):
        second.unseal_body()


@pytest.mark.parametrize("to", ["09012345678", "+81", "not a number", ""])
def test_a_destination_that_is_not_e164_is_refused(issuer, to):
    with pytest.raises(ApplicationError) as exc:
        create(issuer, to=to)
    assert exc.value.fields == {"to": ["Not an E.164 number."]}


# ---------------------------------------------------------------- sending


def test_a_send_records_the_try_and_wipes_the_body(issuer, fake_twilio):
    delivery = run(create(issuer))
    [request] = fake_twilio.requests(to=delivery.to)
    attempt = delivery.attempts.get()
    assert (attempt.state, attempt.provider_message_id, attempt.provider_status) == ("succeeded", request.sid, "queued")
    assert attempt.account_sid == PRIMARY_SID and attempt.duration_ms is not None and attempt.finished_at
    assert request.status_callback.endswith(f"/webhooks/twilio/status/{attempt.callback_token}")
    assert (delivery.status, delivery.provider, delivery.provider_message_id) == ("queued", "primary:twilio", request.sid)
    assert delivery.body_blob is None and delivery.accepted_at
    event = AuditEvent.objects.get(kind="sms.sent")
    assert CODE not in json.dumps(event.data) and event.data["to"] == delivery.masked_to


def test_a_server_error_is_retried_and_exactly_one_sms_is_accepted(issuer, fake_twilio):
    fake_twilio.program(PRIMARY_SID, "500")
    delivery = run(create(issuer))
    assert states(delivery) == [(PRIMARY, 1, "failed_transient"), (PRIMARY, 2, "succeeded")]
    assert len(fake_twilio.requests(to=delivery.to)) == 2
    assert len(fake_twilio.accepted(to=delivery.to)) == 1
    assert delivery.status == "queued"


def test_timeouts_are_retried(issuer, fake_twilio):
    fake_twilio.program(PRIMARY_SID, "hang", "hang")
    delivery = run(create(issuer))
    assert states(delivery) == [(PRIMARY, 1, "failed_transient"), (PRIMARY, 2, "failed_transient"), (PRIMARY, 3, "succeeded")]
    assert [a.error_code for a in delivery.attempts.order_by("try_number")][:2] == ["timeout", "timeout"]


def test_an_invalid_number_fails_at_once_without_retry_or_fallback(issuer, fake_twilio):
    fake_twilio.program(PRIMARY_SID, 21211)
    delivery = run(create(issuer))
    assert (delivery.status, delivery.error_code) == ("failed", "21211")
    assert states(delivery) == [(PRIMARY, 1, "failed_permanent")]
    assert len(fake_twilio.requests(to=delivery.to)) == 1
    assert delivery.body_blob is None
    event = AuditEvent.objects.get(kind="sms.failed")
    assert event.data["error_code"] == "21211" and CODE not in json.dumps(event.data)


def test_after_the_primary_gives_up_the_fallback_sends_once(issuer, fake_twilio):
    fake_twilio.program(PRIMARY_SID, "500", "503", "429")
    delivery = run(create(issuer))
    assert states(delivery) == [(PRIMARY, 1, "failed_transient"), (PRIMARY, 2, "failed_transient"),
                                (PRIMARY, 3, "failed_transient"), (FALLBACK, 1, "succeeded")]
    assert len(fake_twilio.accepted(to=delivery.to, account_sid=FALLBACK_SID)) == 1
    assert fake_twilio.accepted(to=delivery.to, account_sid=PRIMARY_SID) == []
    assert delivery.provider == "fallback:twilio"


def test_an_account_level_refusal_goes_straight_to_the_fallback(issuer, fake_twilio):
    fake_twilio.program(PRIMARY_SID, 21408)
    delivery = run(create(issuer))
    assert states(delivery) == [(PRIMARY, 1, "failed_permanent"), (FALLBACK, 1, "succeeded")]


def test_when_every_provider_gives_up_the_delivery_fails_and_is_audited(issuer, fake_twilio):
    fake_twilio.program(PRIMARY_SID, "500", "500", "500")
    fake_twilio.program(FALLBACK_SID, "503", "hang", "drop")
    delivery = run(create(issuer))
    assert delivery.status == "failed" and delivery.error_code == "network"
    assert len(states(delivery)) == 6 and delivery.attempts.filter(state="succeeded").count() == 0
    assert len(fake_twilio.requests(to=delivery.to)) == 6
    assert AuditEvent.objects.get(kind="sms.failed").data["tries"] == 6


def test_without_a_fallback_the_delivery_fails_after_the_primary(issuer, fake_twilio, settings):
    settings.SMS_FALLBACK_BACKEND = ""
    fake_twilio.program(PRIMARY_SID, "500", "500", "500")
    delivery = run(create(issuer))
    assert delivery.status == "failed" and len(states(delivery)) == 3


def test_a_redelivered_task_never_sends_again(issuer, fake_twilio):
    delivery = run(create(issuer))
    run(delivery)
    run(delivery)
    assert len(fake_twilio.requests(to=delivery.to)) == 1
    assert delivery.attempts.count() == 1


def test_a_try_claimed_moments_ago_is_left_alone(issuer, fake_twilio):
    delivery = create(issuer)
    assert engine.claim(services.SMS_CHANNEL, delivery.pk) is not None  # a worker holds the lease
    wait = services.sms_delivery_send(delivery_id=delivery.pk)
    assert 0 < wait <= services.SMS_CHANNEL.lease_seconds() + 1
    assert fake_twilio.requests(to=delivery.to) == []


def test_a_try_left_claimed_by_a_dead_worker_is_interrupted_and_tried_again(issuer, fake_twilio):
    delivery = create(issuer)
    long_ago = timezone.now() - timedelta(seconds=services.SMS_CHANNEL.lease_seconds() + 1)
    SmsAttempt.objects.create(delivery=delivery, number=1, provider_role=PRIMARY, provider=TWILIO, try_number=1,
                              started_at=long_ago, callback_token="t1")
    SmsDelivery.objects.filter(pk=delivery.pk).update(tries=1, lease_expires_at=long_ago)  # its lease lapsed
    delivery = run(delivery)
    assert states(delivery) == [(PRIMARY, 1, "interrupted"), (PRIMARY, 2, "succeeded")]
    assert len(fake_twilio.accepted(to=delivery.to)) == 1


def test_a_code_replaced_before_sending_is_not_sent(issuer, fake_twilio):
    from apps.otp.models import OtpCode

    otp_code = make_otp_code(issuer)
    delivery = create(issuer, otp_code=otp_code)
    OtpCode.objects.filter(pk=otp_code.pk).update(state=OtpCode.SUPERSEDED)
    delivery = run(delivery)
    assert (delivery.status, delivery.error_code) == ("cancelled", "otp_inactive")
    assert fake_twilio.requests(to=delivery.to) == [] and delivery.body_blob is None


def make_otp_code(issuer):
    from apps.otp.models import OtpCode, OtpPolicy, OtpPolicyVersion, OtpSession

    policy = OtpPolicy.objects.create(issuer=issuer)
    version = OtpPolicyVersion.objects.create(policy=policy, version=1, settings=policy.snapshot())
    session = OtpSession.objects.create(issuer=issuer, phone_e164="+819012345678", masked_phone="+81 ••• •••• 5678",
                                        policy_version=version)
    return OtpCode.objects.create(session=session, code_hash="x" * 64, delivery_mode="provider",
                                  phone_e164="+819012345678", expires_at=timezone.now() + timedelta(minutes=5))


@pytest.mark.parametrize("tries_done", range(1, 12))
def test_backoff_grows_with_jitter_and_stays_below_the_caps(settings, tries_done):
    settings.OUTBOUND_BACKOFF_BASE_SECONDS, settings.OUTBOUND_BACKOFF_MAX_SECONDS = 2, 300
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 400}
    ceiling = min(300, 2 * 2 ** (tries_done - 1), 200)
    for _ in range(20):
        assert min(ceiling / 2, 200) <= engine.backoff_seconds(tries=tries_done) <= ceiling


# ---------------------------------------------------------------- per-issuer providers


def test_an_issuer_can_have_its_own_provider(issuer, other_issuer, fake_twilio, tmp_path, settings):
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    SmsProviderConfig.objects.create(issuer=issuer, role=PRIMARY, backend=FILE)
    ours, theirs = run(create(issuer)), run(create(other_issuer))

    [line] = [json.loads(l) for l in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert (line["delivery_id"], line["to"], line["body"]) == (str(ours.pk), ours.to, otp_body())
    assert (ours.status, ours.provider) == ("sent", "primary:file")
    assert fake_twilio.requests(to=ours.to) == []
    assert fake_twilio.accepted(to=theirs.to, account_sid=PRIMARY_SID)  # the settings' provider


def test_an_issuer_twilio_account_uses_its_encrypted_token(issuer, fake_twilio):
    config = SmsProviderConfig(issuer=issuer, role=PRIMARY, backend=TWILIO, account_sid=PRIMARY_SID, from_number="MYBANK")
    config.set_auth_token(PRIMARY_TOKEN)
    config.save()
    assert PRIMARY_TOKEN.encode() not in bytes(SmsProviderConfig.objects.get().auth_token_blob)
    delivery = run(create(issuer))
    assert fake_twilio.accepted(to=delivery.to)[0].form["From"] == "MYBANK"


def test_an_inactive_issuer_provider_falls_back_to_the_settings(issuer, fake_twilio, tmp_path, settings):
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    SmsProviderConfig.objects.create(issuer=issuer, role=PRIMARY, backend=FILE, is_active=False)
    delivery = run(create(issuer))
    assert delivery.provider == "primary:twilio"


# ---------------------------------------------------------------- housekeeping


def test_old_bodies_are_wiped_and_stale_pending_deliveries_fail(issuer, fake_twilio):
    old_pending, old_sent, fresh = create(issuer), create(issuer), create(issuer)
    SmsDelivery.objects.filter(pk__in=[old_pending.pk, old_sent.pk]).update(created_at=timezone.now() - timedelta(hours=2))
    SmsDelivery.objects.filter(pk=old_sent.pk).update(status="delivered")

    services.sms_bodies_purge()

    assert (reload(old_pending).status, reload(old_pending).error_code) == ("failed", "expired")
    assert reload(old_pending).body_blob is None and reload(old_sent).body_blob is None
    assert reload(old_sent).status == "delivered"
    assert reload(fresh).body_blob is not None
    assert AuditEvent.objects.filter(kind="sms.failed", object_id=str(old_pending.pk)).exists()
    assert run(old_pending).attempts.count() == 0  # nothing left to send


def test_overdue_pending_deliveries_are_found_by_the_sweep(issuer):
    lost, waiting, leased, fresh = create(issuer), create(issuer), create(issuer), create(issuer)
    past = timezone.now() - timedelta(minutes=10)
    SmsDelivery.objects.filter(pk__in=[lost.pk, waiting.pk, leased.pk]).update(next_attempt_at=past)
    SmsDelivery.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now() + timedelta(seconds=30))
    SmsDelivery.objects.filter(pk=leased.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=30))
    assert engine.overdue_ids(services.SMS_CHANNEL, grace_seconds=60) == [lost.pk]


# ---------------------------------------------------------------- refused destinations (SPEC §4)


def test_an_sms_provider_at_a_private_address_fails_at_once_and_says_why(issuer, fake_twilio, settings):
    from tests.core.tripwire import Tripwire

    tripwire = Tripwire().start()
    try:
        settings.OUTBOUND_ALLOW_PRIVATE = False
        settings.TWILIO_API_BASE_URL = tripwire.url("localhost").rstrip("/")  # both accounts
        delivery = run(create(issuer))
        assert delivery.status == SmsDelivery.FAILED
        # One try per provider, no retries: another try would be refused the same way.
        assert states(delivery) == [(PRIMARY, 1, SmsAttempt.FAILED_PERMANENT), (FALLBACK, 1, SmsAttempt.FAILED_PERMANENT)]
        for attempt in delivery.attempts.all():
            assert attempt.error_code == "destination_not_allowed"
            assert attempt.error_message.startswith("Destination not allowed")
        assert tripwire.connections == 0 and fake_twilio.requests() == []
    finally:
        tripwire.stop()
