"""Explanations of the app (OOB) challenge, its fallback to SMS and decoupled authentication, through
the DS's AReq, the 3DS SDK's CReqs and the issuer app's SDK API (real WebAuthn assertions)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.threeds.challenge import challenges_time_out
from apps.threeds.models import RiskPolicy
from apps.threeds.risk import risk_policy_for
from tests.oob.conftest import (  # noqa: F401  (fixtures)
    app, commit_client, committed, creq, directory_server, ds, in_process_tasks, oob_card, push_file, send_areq, sms_file,
)

pytestmark = pytest.mark.usefixtures("push_file", "sms_file")

DECOUPLED = {"threeDSRequestorDecReqInd": "Y", "threeDSRequestorDecMaxTime": "00010"}


def explanation(api, tx) -> str:
    r = api.get(f"/api/v1/transactions/{tx.acs_trans_id}")
    assert r.status_code == 200, r.content
    return r.json()["explanation"]


def started(ds, pan):
    tx = send_areq(ds, pan)
    assert tx.ares["transStatus"] == "C", tx.ares
    assert creq(ds, tx)["acsUiType"] == "04"
    return tx


def test_an_approval_in_the_app(ds, app, oob_card, api):
    tx = started(ds, oob_card)
    assert "Challenge by the app (OOB) in progress." in explanation(api, tx)
    assert app.approve(tx.acs_trans_id).status_code == 200
    assert "The cardholder approved the payment in the app (Y)." in explanation(api, tx)


def test_a_cancel_in_the_app_then_the_sms_code(ds, app, oob_card, api, sms_file):
    tx = started(ds, oob_card)
    app.cancel(tx.acs_trans_id)
    creq(ds, tx, oobContinue=True)
    assert creq(ds, tx, challengeDataEntry=sms_file.last_code())["transStatus"] == "Y"
    text = explanation(api, tx)
    assert "The app challenge fell back to an SMS code because the cardholder cancelled in the app." in text
    assert "The cardholder entered the correct SMS code (Y)." in text


def test_a_cancel_in_the_app_without_fallback_allowed(ds, app, oob_card, issuer, api):
    RiskPolicy.objects.filter(issuer=issuer).update(allow_fallback_to_sms=False)
    tx = started(ds, oob_card)
    app.cancel(tx.acs_trans_id)
    text = explanation(api, tx)
    assert ("The app challenge could not finish because the cardholder cancelled in the app, and falling back to an "
            "SMS code was not possible: the policy does not allow falling back to SMS.") in text
    assert "Declined (N / 01)." in text


def test_the_app_not_answering_falls_back_and_says_so(ds, app, oob_card, issuer, api, committed):
    tx = started(ds, oob_card)
    committed(challenges_time_out, now=timezone.now() + timedelta(seconds=risk_policy_for(issuer).oob_timeout_seconds + 1))
    text = explanation(api, tx)
    assert "fell back to an SMS code because the app did not answer in time" in text
    assert "Challenge by an SMS code in progress." in text


def test_the_app_not_answering_without_fallback_is_n_14(ds, app, oob_card, issuer, api, committed):
    RiskPolicy.objects.filter(issuer=issuer).update(allow_fallback_to_sms=False)
    tx = started(ds, oob_card)
    committed(challenges_time_out, now=timezone.now() + timedelta(seconds=risk_policy_for(issuer).oob_timeout_seconds + 1))
    text = explanation(api, tx)
    assert "could not finish because the app did not answer in time" in text and "Timed out (N / 14)." in text


def test_an_sms_limit_after_the_fallback_names_both(ds, app, oob_card, issuer, api):
    from apps.otp.services import otp_policy_create_default, otp_policy_save

    otp = otp_policy_create_default(issuer=issuer).policy
    otp.max_sends_per_phone_day = 1
    otp_policy_save(policy=otp, actor="tests")
    first = started(ds, oob_card)
    app.cancel(first.acs_trans_id)  # falls back: the one SMS of the day
    tx = started(ds, oob_card)
    app.cancel(tx.acs_trans_id)
    text = explanation(api, tx)
    assert "fell back to an SMS code because the cardholder cancelled in the app" in text
    assert "The SMS code could not be sent: the phone number reached its limit of 1 codes in 24 hours. Declined (N / 13)." in text


# ---------------------------------------------------------------- decoupled (ARes D)


def decoupled(ds, pan):
    tx = send_areq(ds, pan, channel="02", **DECOUPLED)
    assert tx.ares["transStatus"] == "D", tx.ares
    return tx


def test_decoupled_running_then_approved(ds, app, oob_card, api):
    tx = decoupled(ds, oob_card)
    assert "Decoupled authentication in progress: the cardholder's app has been asked to confirm, until" in explanation(api, tx)
    app.approve(tx.acs_trans_id)
    assert "Decoupled authentication: the cardholder approved in the app (Y)." in explanation(api, tx)


def test_decoupled_refused_in_the_app(ds, app, oob_card, api):
    tx = decoupled(ds, oob_card)
    app.cancel(tx.acs_trans_id)
    assert "Decoupled authentication: the cardholder refused in the app (N / 01)." in explanation(api, tx)


def test_decoupled_timed_out(ds, app, oob_card, api, committed):
    tx = decoupled(ds, oob_card)
    committed(challenges_time_out, now=timezone.now() + timedelta(minutes=10, seconds=1))
    assert ("Decoupled authentication: no answer from the app before the 3DS Requestor's maximum time (N / 14)."
            in explanation(api, tx))
