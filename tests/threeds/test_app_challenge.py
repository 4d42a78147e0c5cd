"""App channel (SPEC §3.3): the 3DS SDK's CReqs as JWE → encrypted CRes with counters, OTP entry,
resend, cancel; the CReqs that must be Erro 302 (and change nothing), through the test SDK
(tests.support.app_session) for both encs."""

import base64
import json

import pytest

from apps.audit.models import AuditEvent
from apps.threeds.models import Challenge, Transaction
from tests.support.app_session import AppSession
from tests.threeds.conftest import PAN

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["A128CBC-HS256", "A128GCM"])
def started(request, client, enrolled, sms_file, django_capture_on_commit_callbacks):
    """The 3DS SDK after the AReq, through the test client; each request's on_commit work (the
    SMS, the RReq) runs as it would after its commit."""
    session = AppSession(client, enc=request.param, around=lambda: django_capture_on_commit_callbacks(execute=True))
    assert session.areq(pan=PAN, threeDSRequestorChallengeInd="04")["transStatus"] == "C"
    return session


def _state(session) -> tuple:
    """Everything a refused CReq must leave as it was."""
    challenge = Challenge.objects.select_related("transaction").get(transaction_id=session.acs_trans_id)
    tx = challenge.transaction
    return (challenge.state, challenge.sdk_counter_expected, challenge.acs_counter, bytes(challenge.app_session_key_blob or b""),
            challenge.otp_session_id, tx.trans_status, tx.interaction_counter, tx.three_ds_requestor_app_url,
            AuditEvent.objects.filter(acs_trans_id=session.acs_trans_id).count())


def test_the_first_creq_sends_the_code_and_shows_the_otp_ui(started, sms_file):
    cres = started.send()
    assert cres["messageType"] == "CRes" and cres["acsUiType"] == "01" and cres["challengeCompletionInd"] == "N"
    assert cres["acsCounterAtoS"] == "000"
    assert "+81 ••• •••• 5678" in cres["challengeInfoText"] and cres["submitAuthenticationLabel"]
    assert len(sms_file.messages()) == 1


def test_the_right_code_ends_with_y_and_wipes_the_session_key(started, sms_file):
    started.send()
    cres = started.send(challengeDataEntry=sms_file.last_code())
    assert cres["challengeCompletionInd"] == "Y" and cres["transStatus"] == "Y" and cres["acsCounterAtoS"] == "001"
    tx = Transaction.objects.get(acs_trans_id=started.acs_trans_id)
    assert tx.trans_status == "Y" and tx.eci == "05" and len(tx.authentication_value) == 28 and tx.interaction_counter == 1
    assert (tx.challenge.app_session_key_id, tx.challenge.app_session_key_blob) == ("", None)


def test_wrong_codes_then_lockout_is_n_19(started, sms_file):
    started.send()
    code = sms_file.last_code()
    wrong = "000000" if code != "000000" else "111111"
    assert "2" in started.send(challengeDataEntry=wrong)["challengeInfoText"]
    assert "1" in started.send(challengeDataEntry=wrong)["challengeInfoText"]
    cres = started.send(challengeDataEntry=wrong)
    assert cres["transStatus"] == "N"
    tx = Transaction.objects.get(acs_trans_id=started.acs_trans_id)
    assert (tx.trans_status, tx.trans_status_reason) == ("N", "19") and tx.challenge.app_session_key_blob is None


def test_resend_then_the_new_code(started, sms_file):
    from apps.otp.models import OtpSession
    from django.utils import timezone
    from datetime import timedelta

    started.send()
    OtpSession.objects.update(last_sent_at=timezone.now() - timedelta(minutes=1))
    cres = started.send(resendChallenge="Y")
    assert cres["challengeCompletionInd"] == "N" and len(sms_file.messages()) == 2
    assert started.send(challengeDataEntry=sms_file.last_code())["transStatus"] == "Y"


def test_resend_within_the_cooldown_is_refused_politely(started, sms_file):
    started.send()
    cres = started.send(resendChallenge="Y")
    assert cres["challengeCompletionInd"] == "N" and "Wait" in cres["challengeInfoText"]
    assert len(sms_file.messages()) == 1


def test_cancel_is_n_with_challenge_cancel_01(started):
    started.send()
    cres = started.send(challengeCancel="01")
    assert cres["transStatus"] == "N"
    tx = Transaction.objects.get(acs_trans_id=started.acs_trans_id)
    assert tx.challenge_cancel == "01" and tx.challenge.state == Challenge.CANCELLED


def test_a_cancel_on_the_first_creq_sends_no_code(started, sms_file):
    cres = started.send(challengeCancel="01")
    assert cres["transStatus"] == "N" and sms_file.messages() == []


# ---------------------------------------------------------------- refused CReqs: nothing changes


def test_a_replayed_counter_is_erro_302_and_changes_nothing(started, sms_file):
    started.send()
    before = _state(started)
    erro = started.send_raw(started.encrypt(challengeDataEntry=sms_file.last_code(), counter=0))
    assert erro["errorCode"] == "302" and erro["acsTransID"] == started.acs_trans_id
    assert _state(started) == before and before[5] == ""


def test_a_non_advancing_counter_is_erro_302_and_changes_nothing(started, sms_file):
    started.send()
    started.send(challengeDataEntry="000000" if sms_file.last_code() != "000000" else "111111")
    before = _state(started)
    assert started.send_raw(started.encrypt(challengeDataEntry=sms_file.last_code(), counter=1))["errorCode"] == "302"
    assert _state(started) == before


def test_a_skipped_counter_is_erro_303(started):
    started.send()
    before = _state(started)
    assert started.send_raw(started.encrypt(counter=5))["errorCode"] == "303"
    assert _state(started) == before


def test_a_tampered_tag_is_erro_302_and_changes_nothing(started, sms_file):
    started.send()
    before = _state(started)
    parts = started.encrypt(challengeDataEntry=sms_file.last_code()).split(".")
    tag = bytearray(base64.urlsafe_b64decode(parts[4] + "=="))
    tag[0] ^= 1
    parts[4] = base64.urlsafe_b64encode(bytes(tag)).rstrip(b"=").decode()
    erro = started.send_raw(".".join(parts))
    assert erro["errorCode"] == "302" and "acsTransID" not in erro
    assert _state(started) == before


def test_a_wrong_kid_is_erro_302_and_changes_nothing(started, client, enrolled, sms_file):
    started.send()
    before = _state(started)
    started.sdk.acs_trans_id = "8a5c2a40-9a3e-4a53-8d5e-5f8d7a9b6c11"  # names no challenge
    assert started.send_raw(started.encrypt(challengeDataEntry=sms_file.last_code()))["errorCode"] == "302"
    assert _state(started) == before


def test_a_kid_sealed_under_another_challenges_key_is_erro_302(started, client, sms_file):
    started.send()
    before = _state(started)
    other = AppSession(client)
    assert other.areq(pan=PAN, threeDSRequestorChallengeInd="04")["transStatus"] == "C"
    other.sdk.acs_trans_id = started.acs_trans_id  # the right kid, the wrong session key
    assert other.send_raw(other.encrypt())["errorCode"] == "302"
    assert _state(started) == before


def test_a_decrypted_acs_trans_id_other_than_the_kid_is_erro_302(started, sms_file):
    started.send()
    before = _state(started)
    erro = started.send_raw(started.encrypt(acsTransID="8a5c2a40-9a3e-4a53-8d5e-5f8d7a9b6c11"))
    assert erro["errorCode"] == "302"
    assert _state(started) == before


def test_a_plain_json_creq_is_erro_302_and_changes_nothing(started, sms_file):
    started.send()
    before = _state(started)
    plain = {**started.creq(challengeDataEntry=sms_file.last_code()), "sdkCounterStoA": "001"}
    for content_type in ("application/json", "application/jose; charset=UTF-8"):
        erro = started.send_raw(json.dumps(plain), content_type=content_type)
        assert erro["errorCode"] == "302" and erro["errorMessageType"] == "CReq"
        assert erro["threeDSServerTransID"] == plain["threeDSServerTransID"]
    assert _state(started) == before


def test_a_creq_for_another_transaction_is_301(started):
    started.send()
    before = _state(started)
    erro = started.send_raw(started.encrypt(threeDSServerTransID="8a5c2a40-9a3e-4a53-8d5e-5f8d7a9b6c11"))
    assert erro["errorCode"] == "301"
    assert _state(started) == before


def test_an_opened_but_invalid_creq_gets_its_erro(started):
    started.send()
    before = _state(started)
    assert started.send_raw(started.encrypt(sdkTransID=None))["errorCode"] == "201"
    assert _state(started) == before


@pytest.mark.parametrize("body", ["nope", '{"messageType": "AReq"}', "a.b.c.d.e", "", "e30.." + "A" * 20000])
def test_bad_bodies_are_plain_json_erro_302(client, db, body):
    r = client.post("/3ds/v2/creq", body, content_type="application/jose")
    assert r.status_code == 200 and r["Content-Type"] == "application/json" and r.json()["errorCode"] == "302"


def test_after_the_end_the_wiped_key_opens_nothing(started, sms_file):
    started.send()
    started.send(challengeDataEntry=sms_file.last_code())
    before = _state(started)
    assert started.send_raw(started.encrypt(challengeDataEntry="123456"))["errorCode"] == "302"
    assert _state(started) == before


def test_a_challenge_ended_outside_the_sdk_keeps_its_key_for_the_grace_then_it_is_wiped(started):
    from datetime import timedelta

    from django.utils import timezone

    from apps.threeds.challenge import APP_SESSION_KEY_GRACE, challenges_time_out

    started.send()
    # The whole challenge's deadline passes (no code entered): ended by the sweep, not by a CReq.
    Challenge.objects.filter(transaction_id=started.acs_trans_id).update(deadline=timezone.now() - timedelta(seconds=1))
    assert challenges_time_out() == 1
    challenge = Challenge.objects.get(transaction_id=started.acs_trans_id)
    assert challenge.is_final and challenge.app_session_key_blob is not None  # the SDK may still ask
    challenges_time_out(now=challenge.finished_at + APP_SESSION_KEY_GRACE - timedelta(seconds=1))
    assert Challenge.objects.get(pk=challenge.pk).app_session_key_blob is not None
    challenges_time_out(now=challenge.finished_at + APP_SESSION_KEY_GRACE + timedelta(seconds=1))
    challenge.refresh_from_db()
    assert (challenge.app_session_key_id, challenge.app_session_key_blob) == ("", None)
    assert started.send_raw(started.encrypt())["errorCode"] == "302"  # nothing can open a CReq now
