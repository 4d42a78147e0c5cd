"""The OTP engine through its service functions, delivering to the `file` SMS provider."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.cards.models import Phone
from apps.otp.models import OtpCode, OtpRefusal, OtpSession
from apps.otp.services import OtpRefused, otp_cancel, otp_expire_codes, otp_resend, otp_session_start, otp_verify
from tests.otp.conftest import DETAILS

pytestmark = pytest.mark.django_db


@pytest.fixture
def start(card, phone, policy, sms_file, django_capture_on_commit_callbacks):
    def go(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return otp_session_start(card=kwargs.pop("card", card), phone=kwargs.pop("phone", phone), locale=kwargs.pop("locale", "en"),
                                     transaction_details=DETAILS, **kwargs)

    return go


@pytest.fixture
def resend(django_capture_on_commit_callbacks):
    def go(session):
        with django_capture_on_commit_callbacks(execute=True):
            return otp_resend(session_id=session.pk)

    return go


def test_the_code_sent_by_sms_verifies_once(start, sms_file):
    session = start()
    [sms] = sms_file.messages()
    assert sms["to"] == "+819012345678"
    assert "Tokyo Books" in sms["body"] and "¥1,500" in sms["body"] and "5 min" in sms["body"]
    code = sms_file.last_code()
    assert otp_verify(session_id=session.pk, code=code).verified
    assert otp_verify(session_id=session.pk, code=code).outcome == "closed"  # single use
    session.refresh_from_db()
    assert session.state == OtpSession.VERIFIED
    assert session.codes.get().state == OtpCode.USED


def test_the_sms_speaks_the_cardholders_language(start, sms_file):
    start(locale="ja")
    assert "認証コード" in sms_file.messages()[0]["body"]


def test_only_a_keyed_hash_of_the_code_is_stored(start, sms_file):
    session = start()
    code = sms_file.last_code()
    stored = session.codes.get()
    assert code not in stored.code_hash and len(stored.code_hash) == 64
    with connection.cursor() as cursor:
        for table in ("otp_otpcode", "otp_otpsession", "audit_auditevent"):
            cursor.execute(f"SELECT * FROM {table}")
            assert code not in str(cursor.fetchall()), table


def test_wrong_codes_count_down_then_lock_the_challenge(start, sms_file):
    session = start()
    code = sms_file.last_code()
    wrong = "000000" if code != "000000" else "111111"
    assert otp_verify(session_id=session.pk, code=wrong).attempts_left == 2
    assert otp_verify(session_id=session.pk, code="not-a-code").attempts_left == 1
    result = otp_verify(session_id=session.pk, code=wrong)
    assert (result.outcome, result.attempts_left, result.state) == ("locked", 0, "locked")
    assert otp_verify(session_id=session.pk, code=code).outcome == "closed"  # dead after lockout
    assert session.codes.get().state == OtpCode.DEAD
    assert AuditEvent.objects.filter(kind="otp.locked").exists()


def test_a_resend_kills_the_old_code(start, resend, sms_file):
    session = start()
    old = sms_file.last_code()
    OtpSession.objects.filter(pk=session.pk).update(last_sent_at=timezone.now() - timedelta(seconds=31))
    resend(session)
    new = sms_file.last_code()
    assert len(sms_file.messages()) == 2
    if old != new:
        assert otp_verify(session_id=session.pk, code=old).outcome == "wrong"
    assert otp_verify(session_id=session.pk, code=new).verified
    assert session.codes.filter(state=OtpCode.SUPERSEDED).count() == 1


def test_resends_respect_the_cooldown(start, resend, sms_file):
    session = start()
    with pytest.raises(OtpRefused) as exc:
        resend(session)
    assert exc.value.code == "resend_cooldown" and 0 < exc.value.retry_after <= 30
    assert len(sms_file.messages()) == 1
    assert AuditEvent.objects.filter(kind="otp.refused", data__reason="resend_cooldown").exists()


def test_resends_respect_the_limit(start, resend, sms_file, set_policy):
    set_policy(max_resends=1, resend_cooldown_seconds=0)
    session = start()
    resend(session)
    with pytest.raises(OtpRefused) as exc:
        resend(session)
    assert exc.value.code == "resend_limit"
    assert len(sms_file.messages()) == 2
    # The challenge goes on with the code it has.
    assert otp_verify(session_id=session.pk, code=sms_file.last_code()).verified


def test_an_expired_code_does_not_verify(start, sms_file):
    session = start()
    code = sms_file.last_code()
    OtpCode.objects.filter(session=session).update(expires_at=timezone.now() - timedelta(seconds=1))
    result = otp_verify(session_id=session.pk, code=code)
    assert result.outcome == "expired" and result.attempts_left == 3
    assert session.codes.get().state == OtpCode.EXPIRED


def test_the_scheduled_expiry_kills_codes_past_their_lifetime(start, sms_file):
    session = start()
    assert otp_expire_codes() == 0
    assert otp_expire_codes(now=timezone.now() + timedelta(seconds=301)) == 1
    assert otp_verify(session_id=session.pk, code=sms_file.last_code()).outcome == "expired"


def test_cancel_kills_the_code(start, sms_file):
    session = start()
    otp_cancel(session_id=session.pk)
    assert otp_verify(session_id=session.pk, code=sms_file.last_code()).outcome == "closed"


def test_the_session_records_the_policy_version_it_ran_under(start, set_policy, sms_file):
    session = start()
    set_policy(max_attempts=10)
    session.refresh_from_db()
    assert session.policy_version.version == 1 and session.policy_version.rules.max_attempts == 3


def test_policy_code_length_is_honoured(start, set_policy, sms_file):
    set_policy(code_length=8)
    session = start()
    code = sms_file.last_code(8)
    assert otp_verify(session_id=session.pk, code=code).verified


def test_a_destination_outside_the_allowed_countries_is_refused(start, cardholder, sms_file):
    french = Phone.objects.create(cardholder=cardholder, number="+33612345678", verified=True)
    with pytest.raises(OtpRefused) as exc:
        start(phone=french)
    assert exc.value.code == "country_not_allowed"
    assert sms_file.messages() == []
    assert OtpRefusal.objects.get().reason == "country_not_allowed"
    assert OtpSession.objects.get().state == OtpSession.CANCELLED
    assert not OtpCode.objects.exists()


def test_allowed_countries_come_from_the_policy(start, cardholder, set_policy, sms_file):
    set_policy(allowed_countries=["JP", "FR"])
    french = Phone.objects.create(cardholder=cardholder, number="+33612345678", verified=True)
    start(phone=french)
    assert sms_file.messages()[0]["to"] == "+33612345678"


def test_sends_per_card_per_hour_are_limited(start, sms_file):
    for _ in range(5):
        start()
    with pytest.raises(OtpRefused) as exc:
        start()
    assert exc.value.code == "card_hourly_limit"
    assert len(sms_file.messages()) == 5


def test_sends_per_phone_per_day_are_limited(start, cardholder, set_policy, sms_file):
    from tests.factories import make_card

    set_policy(max_sends_per_phone_day=3)
    for _ in range(3):
        start(card=make_card(cardholder=cardholder))
    with pytest.raises(OtpRefused) as exc:
        start(card=make_card(cardholder=cardholder))
    assert exc.value.code == "phone_daily_limit"


def test_old_sends_do_not_count_against_the_hourly_limit(start, sms_file):
    for _ in range(5):
        start()
    OtpCode.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    start()


def test_the_sender_id_follows_the_destination_country(start, set_policy, sms_file):
    set_policy(sender_ids={"JP": "+815012345678", "default": "BANK"})
    start()
    assert sms_file.messages()[0]["from"] == "+815012345678"


def test_any_string_is_just_a_wrong_code(start, sms_file):
    session = start()
    assert otp_verify(session_id=session.pk, code="\udc80\ud800").outcome == "wrong"
    assert otp_verify(session_id=session.pk, code="１２３４５６").outcome in ("wrong", "locked")
