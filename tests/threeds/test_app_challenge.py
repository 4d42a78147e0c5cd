"""App channel: JSON CReq → CRes with counters, OTP entry, resend, cancel."""

import pytest

from apps.threeds.models import Challenge, Transaction
from apps.threeds.simulator.client import Acs
from apps.threeds.simulator.transport import DjangoClientTransport
from tests.threeds.conftest import PAN

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(client, enrolled, sms_file, django_capture_on_commit_callbacks):
    """The 3DS SDK after the AReq, through the test client; each request's on_commit work (the
    SMS, the RReq) runs as it would after its commit."""
    transport = DjangoClientTransport(client, around=lambda: django_capture_on_commit_callbacks(execute=True))
    auth = Acs(transport).areq(pan=PAN, channel="01", threeDSRequestorChallengeInd="04")
    assert auth.trans_status == "C"
    return auth.app()


def test_the_first_creq_sends_the_code_and_shows_the_otp_ui(started, sms_file):
    cres = started.send()
    assert cres["messageType"] == "CRes" and cres["acsUiType"] == "01" and cres["challengeCompletionInd"] == "N"
    assert cres["acsCounterAtoS"] == "000"
    assert "+81 ••• •••• 5678" in cres["challengeInfoText"] and cres["submitAuthenticationLabel"]
    assert len(sms_file.messages()) == 1


def test_the_right_code_ends_with_y(started, sms_file):
    started.send()
    cres = started.send(challengeDataEntry=sms_file.last_code())
    assert cres["challengeCompletionInd"] == "Y" and cres["transStatus"] == "Y" and cres["acsCounterAtoS"] == "001"
    tx = Transaction.objects.get(acs_trans_id=started.ares["acsTransID"])
    assert tx.trans_status == "Y" and tx.eci == "05" and len(tx.authentication_value) == 28 and tx.interaction_counter == 1


def test_wrong_codes_then_lockout_is_n_19(started, sms_file):
    started.send()
    code = sms_file.last_code()
    wrong = "000000" if code != "000000" else "111111"
    assert "2" in started.send(challengeDataEntry=wrong)["challengeInfoText"]
    assert "1" in started.send(challengeDataEntry=wrong)["challengeInfoText"]
    cres = started.send(challengeDataEntry=wrong)
    assert cres["transStatus"] == "N"
    tx = Transaction.objects.get(acs_trans_id=started.ares["acsTransID"])
    assert (tx.trans_status, tx.trans_status_reason) == ("N", "19")


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
    tx = Transaction.objects.get(acs_trans_id=started.ares["acsTransID"])
    assert tx.challenge_cancel == "01" and tx.challenge.state == Challenge.CANCELLED


def test_a_replayed_counter_is_erro_302_and_changes_nothing(started, sms_file):
    started.send()
    started.counter = 0
    erro = started.send(challengeDataEntry=sms_file.last_code())
    assert erro["messageType"] == "Erro" and erro["errorCode"] == "302"
    assert Transaction.objects.get(acs_trans_id=started.ares["acsTransID"]).trans_status == ""


def test_a_skipped_counter_is_erro_303(started):
    started.send()
    started.counter = 5
    assert started.send()["errorCode"] == "303"


def test_a_creq_for_another_transaction_is_301(started, client):
    started.send()
    body = {"messageType": "CReq", "messageVersion": "2.2.0", "threeDSServerTransID": "8a5c2a40-9a3e-4a53-8d5e-5f8d7a9b6c11",
            "acsTransID": started.ares["acsTransID"], "sdkTransID": "8a5c2a40-9a3e-4a53-8d5e-5f8d7a9b6c12", "sdkCounterStoA": "001"}
    assert client.post("/3ds/v2/creq", body, content_type="application/json").json()["errorCode"] == "301"


@pytest.mark.parametrize(
    "body, code",
    [("nope", "101"), ('{"messageType": "AReq"}', "101"), ('{"messageType": "CReq", "messageVersion": "9.9.9"}', "102"),
     ('{"messageType": "CReq", "messageVersion": "2.2.0"}', "201")],
)
def test_bad_creqs_are_erro(client, db, body, code):
    r = client.post("/3ds/v2/creq", body, content_type="application/json")
    assert r.status_code == 200 and r.json()["errorCode"] == code


def test_a_finished_challenge_answers_its_final_cres_again(started, sms_file):
    started.send()
    started.send(challengeDataEntry=sms_file.last_code())
    again = started.send(challengeDataEntry="123456")
    assert again["transStatus"] == "Y" and again["challengeCompletionInd"] == "Y"


def test_a_cancel_on_the_first_creq_sends_no_code(started, sms_file):
    cres = started.send(challengeCancel="01")
    assert cres["transStatus"] == "N" and sms_file.messages() == []
