"""The transaction page: decision, challenge summary, result, and the full timeline in time order,
from a real OOB challenge that falls back to SMS, a wrong then a right code, an SMS status
callback, and an RReq the DS first refuses."""

import pytest

from apps.analyst import selectors
from apps.analyst.selectors import Scope
from apps.sms.models import SmsAttempt
from apps.sms.services import sms_status_apply
from tests.analyst.flows import wrong
from tests.oob.conftest import (  # noqa: F401  (fixtures)
    app, commit_client, creq, directory_server, ds, in_process_tasks, oob_card, send_areq, sms_file,
)
from tests.support.delivery import sweep_until_settled
from tests.threeds.ds_server import ds_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_retries(settings):
    settings.OUTBOUND_BACKOFF_BASE_SECONDS = 0.01
    settings.OUTBOUND_BACKOFF_MAX_SECONDS = 0.05
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 1


@pytest.fixture
def fell_back(ds, app, oob_card, sms_file, ds_server, fast_retries):
    """OOB → cancelled in the app → SMS code: one wrong, then right → Y; the DS answers the first
    RReq with HTTP 500; the provider then reports the SMS delivered."""
    ds.ds_url = ds_server.url
    ds_server.answer(500)
    tx = send_areq(ds, oob_card)
    assert creq(ds, tx)["acsUiType"] == "04"
    assert app.cancel(tx.acs_trans_id).status_code == 200
    assert creq(ds, tx, oobContinue=True)["acsUiType"] == "01"
    code = sms_file.last_code()
    creq(ds, tx, challengeDataEntry=wrong(code))
    assert creq(ds, tx, challengeDataEntry=code)["transStatus"] == "Y"
    sweep_until_settled("rreq")  # the RReq's second try, as the sweep makes it in process
    attempt = SmsAttempt.objects.get(delivery__acs_trans_id=tx.acs_trans_id)
    assert sms_status_apply(attempt_id=attempt.pk, message_sid=attempt.provider_message_id, status="delivered")
    return tx


def titles(entries) -> list[str]:
    return [e.title for e in entries]


def position(entries, text: str) -> int:
    for i, e in enumerate(entries):
        if text in e.title:
            return i
    raise AssertionError(f"{text!r} not in the timeline: {titles(entries)}")


def test_the_timeline_has_every_step_in_time_order(fell_back, issuer):
    tx = selectors.transaction_get(scope=Scope(issuer), acs_trans_id=fell_back.acs_trans_id)
    entries = selectors.transaction_timeline(tx=tx)
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    steps = [
        "threeds.areq_received", "threeds.ares_sent", "threeds.creq_received", "OOB request created",
        "Push to device", "Push try 1", "OOB request cancelled", "threeds.oob_fallback", "SMS #1 queued",
        "SMS #1: primary file try 1 — succeeded", "otp.wrong_code", "otp.verified", "threeds.challenge_finished",
        "RReq queued", "RReq try 1 — HTTP 500", "RReq try 2 — HTTP 200, RRes resultsStatus 01", "threeds.rres_received",
        "sms.delivered",
    ]
    positions = [position(entries, step) for step in steps]
    assert positions == sorted(positions), list(zip(steps, positions))


def test_the_sms_try_shows_provider_status_and_duration(fell_back, issuer):
    tx = selectors.transaction_get(scope=Scope(issuer), acs_trans_id=fell_back.acs_trans_id)
    entries = selectors.transaction_timeline(tx=tx)
    sms_try = entries[position(entries, "SMS #1: primary file try 1")]
    details = dict(sms_try.details)
    assert details["last status callback"] == "delivered" and details["duration"].endswith(" ms")
    assert details["provider message id"].startswith("file-")
    callback = entries[position(entries, "sms.delivered")]
    assert ("by", "provider:twilio") in callback.details


def test_the_page_explains_the_decision_challenge_and_result(fell_back, analyst_client):
    response = analyst_client.get(f"/analyst/transactions/{fell_back.acs_trans_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Risk score", "challenge_mandated_by_requestor", "indicator=04", "+0", "SMS one-time password (started out of band)",
                 "yes — cancelled_in_app", "OTP attempts used", "issued (not shown)", "RRes resultsStatus 01",
                 "RReq try 1 — HTTP 500", "threeds.oob_fallback", "SMS #1 accepted by primary:file"):
        assert text in html, text
    challenge = response.context["challenge"]
    assert (challenge.otp_attempts_used, challenge.resends_used, challenge.fallback_reason) == (1, 0, "cancelled_in_app")


def test_the_list_and_its_filters_find_it(fell_back, analyst_client):
    rows = analyst_client.get("/analyst/", {"fell_back": "yes", "method": "sms_otp", "trans_status": "Y"}).context["rows"]
    assert [str(r["tx"].acs_trans_id) for r in rows] == [fell_back.acs_trans_id]
    assert rows[0]["fallback_reason"] == "cancelled_in_app"
