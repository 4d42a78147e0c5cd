"""Decoupled authentication (SPEC §3.9): ARes D, the OOB request to the issuer app without any
CReq, the outcome in the RReq (Y after a verified assertion, N on cancel, N/14 at the requestor's
max time)."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.devices.models import Device
from apps.oob.models import AuthnRequest
from apps.threeds.challenge import challenges_time_out
from apps.threeds.models import Challenge, RiskPolicy, Transaction
from apps.threeds.outbound import notification_payload
from apps.threeds.simulator.messages import browser_creq
from tests.oob.conftest import (  # noqa: F401  (fixtures)
    app, commit_client, committed, directory_server, ds, in_process_tasks, oob_card, push_file, send_areq, sms_file,
)
from tests.threeds.builders import areq
from tests.threeds.merchant_site import creq_encode

pytestmark = pytest.mark.usefixtures("push_file", "sms_file")

BROWSER = "02"
DECOUPLED = {"threeDSRequestorDecReqInd": "Y", "threeDSRequestorDecMaxTime": "00010"}  # 10 minutes


def decoupled(ds, pan, **overrides):
    tx = send_areq(ds, pan, channel=BROWSER, **{**DECOUPLED, **overrides})
    assert tx.ares["transStatus"] == "D", tx.ares
    return tx


def challenge_of(tx) -> Challenge:
    return Challenge.objects.select_related("transaction").get(transaction_id=tx.acs_trans_id)


def test_the_ares_is_d_and_the_app_is_asked_at_once(ds, app, oob_card, push_file, api):
    tx = decoupled(ds, oob_card)
    # Running, as a challenge is: the API's "challenge running" filter finds it.
    running = api.get("/api/v1/transactions", {"status": "C"}).json()
    assert [row["acs_trans_id"] for row in running["results"]] == [tx.acs_trans_id]
    assert tx.ares["acsDecConInd"] == "Y"
    assert tx.ares["cardholderInfo"] == "Open your bank's app on your phone to confirm this payment."
    assert tx.ares["authenticationType"] == "04"
    assert "acsURL" not in tx.ares and "eci" not in tx.ares and "authenticationValue" not in tx.ares
    challenge = challenge_of(tx)
    assert (challenge.method, challenge.decoupled, challenge.state) == (Challenge.OOB, True, Challenge.IN_PROGRESS)
    # Both deadlines are the requestor's max time: no first-CReq timeout for a flow without CReq.
    created = challenge.transaction.created_at
    assert challenge.first_creq_deadline == challenge.deadline == challenge.oob_deadline
    assert timedelta(minutes=9) < challenge.deadline - created <= timedelta(minutes=10)
    assert challenge.transaction.finished_at is None
    assert len(push_file.messages()) == 1
    assert [r["acsTransId"] for r in app.pending()] == [tx.acs_trans_id]


def test_an_approved_request_sends_an_rreq_y(ds, app, oob_card, directory_server, api):
    tx = decoupled(ds, oob_card)
    # While the cardholder has not answered, the Stripe import says it is running, not "no result".
    running = api.get(f"/api/v1/transactions/{tx.acs_trans_id}/stripe-import")
    assert running.status_code == 409 and running.json()["error"]["code"] == "transaction_in_progress"
    assert "decoupled" in running.json()["error"]["message"]
    r = app.approve(tx.acs_trans_id)
    assert r.status_code == 200, r.content
    row = Transaction.objects.get(pk=tx.acs_trans_id)
    assert (row.trans_status, row.eci, len(row.authentication_value)) == ("Y", "05", 28)
    rreq = directory_server.rreqs[-1]
    assert rreq["acsTransID"] == tx.acs_trans_id and rreq["transStatus"] == "Y"
    assert rreq["eci"] == "05" and rreq["authenticationValue"] == row.authentication_value
    assert rreq["authenticationType"] == "04" and "acsRenderingType" not in rreq
    assert notification_payload(row)["operation"] == "3DS_CHALLENGE_OOB"
    assert challenge_of(tx).state == Challenge.SUCCEEDED
    # The analyst's timeline and the transaction API say it was decoupled.
    events = {e.kind: e.data for e in AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id)}
    assert events["threeds.ares_sent"]["transStatus"] == "D" and events["threeds.ares_sent"]["decoupled"] is True
    for kind in ("oob.request_created", "oob.proceeded", "oob.approved", "threeds.challenge_finished"):
        assert kind in events
    body = api.get(f"/api/v1/transactions/{tx.acs_trans_id}").json()
    assert body["ares_trans_status"] == "D" and body["challenge"]["decoupled"] is True
    assert api.get(f"/api/v1/transactions/{tx.acs_trans_id}/stripe-import").status_code == 200


def test_a_cancel_in_the_app_sends_an_rreq_n_and_no_sms(ds, app, oob_card, directory_server, sms_file):
    tx = decoupled(ds, oob_card)
    r = app.cancel(tx.acs_trans_id)
    assert r.status_code == 200, r.content
    row = Transaction.objects.get(pk=tx.acs_trans_id)
    assert row.trans_status == "N" and row.authentication_value == ""
    rreq = directory_server.rreqs[-1]
    assert rreq["transStatus"] == "N" and "authenticationValue" not in rreq
    # Never an SMS fallback: there is no page to type a code into.
    assert sms_file.messages() == []
    assert challenge_of(tx).fallback_reason == "cancelled_in_app"


def test_the_max_time_ends_with_n_14_and_not_before(ds, app, oob_card, issuer, directory_server, committed):
    tx = decoupled(ds, oob_card)
    policy = RiskPolicy.objects.get(issuer=issuer)
    # Past the first-CReq and the OOB timeouts of an ordinary challenge: still waiting.
    later = max(policy.first_creq_timeout_seconds, policy.oob_timeout_seconds) + 1
    assert committed(challenges_time_out, now=timezone.now() + timedelta(seconds=later)) == 0
    assert challenge_of(tx).state == Challenge.IN_PROGRESS
    assert committed(challenges_time_out, now=timezone.now() + timedelta(minutes=10, seconds=1)) == 1
    row = Transaction.objects.get(pk=tx.acs_trans_id)
    assert (row.trans_status, row.trans_status_reason) == ("N", "14")
    rreq = directory_server.rreqs[-1]
    assert (rreq["transStatus"], rreq["transStatusReason"]) == ("N", "14")
    assert AuthnRequest.objects.get(challenge_id=tx.acs_trans_id).state == AuthnRequest.EXPIRED
    assert app.pending() == []


def test_cardholder_info_is_in_the_cardholders_language(ds, app, oob_card):
    from apps.cards.models import Card

    Card.objects.get(last4=oob_card[-4:]).cardholder.__class__.objects.update(locale="ja")
    tx = decoupled(ds, oob_card)
    assert tx.ares["cardholderInfo"].startswith("スマートフォンで") and len(tx.ares["cardholderInfo"]) <= 128


def test_without_an_active_device_the_request_is_ignored(ds, app, oob_card):
    Device.objects.filter(pk=app.device_id).update(status=Device.STATUS_REVOKED)
    tx = send_areq(ds, oob_card, channel=BROWSER, **DECOUPLED)
    assert tx.ares["transStatus"] == "C" and tx.ares["authenticationType"] == "02"
    assert "acsDecConInd" not in tx.ares
    assert challenge_of(tx).decoupled is False


def test_no_challenge_needed_is_frictionless(ds, app, oob_card):
    message = areq(pan=oob_card, channel=BROWSER, dsURL=ds.ds_url, threeDSRequestorChallengeInd="01", **DECOUPLED)
    ares = ds.post("/3ds/v2/areq", message, format="json").json()
    assert ares["transStatus"] == "Y" and "acsDecConInd" not in ares


def test_a_2_1_0_areq_ignores_the_decoupled_elements(ds, app, oob_card):
    # 2.1.0 has no decoupled authentication (emv.VERSION_RULES): the elements are unknown ones.
    tx = send_areq(ds, oob_card, channel=BROWSER, version="2.1.0", threeDSRequestorDecReqInd="Y",
                   threeDSRequestorDecMaxTime="bogus")
    assert tx.ares["transStatus"] == "C" and "acsDecConInd" not in tx.ares


@pytest.mark.parametrize(("overrides", "code", "detail"), [
    ({"threeDSRequestorDecMaxTime": None}, "201", "threeDSRequestorDecMaxTime"),
    ({"threeDSRequestorDecMaxTime": "10081"}, "203", "threeDSRequestorDecMaxTime"),
    ({"threeDSRequestorDecMaxTime": "00000"}, "203", "threeDSRequestorDecMaxTime"),
    ({"threeDSRequestorDecReqInd": "X"}, "203", "threeDSRequestorDecReqInd"),
])
def test_invalid_decoupled_elements_get_an_erro(ds, oob_card, overrides, code, detail):
    tx = send_areq(ds, oob_card, channel=BROWSER, **{**DECOUPLED, **overrides})
    assert (tx.ares["messageType"], tx.ares["errorCode"], tx.ares["errorDetail"]) == ("Erro", code, detail)


def test_a_duplicate_areq_pushes_once(ds, app, oob_card, push_file):
    tx = decoupled(ds, oob_card)
    again = ds.post("/3ds/v2/areq", tx.message, format="json").json()
    assert again == tx.ares
    assert len(push_file.messages()) == 1 and AuthnRequest.objects.filter(challenge_id=tx.acs_trans_id).count() == 1


def test_a_creq_for_a_decoupled_transaction_is_refused(ds, app, oob_card, client):
    tx = decoupled(ds, oob_card)
    creq = browser_creq(tx.message, tx.acs_trans_id)
    r = client.post("/3ds/v2/challenge", urlencode({"creq": creq_encode(creq), "threeDSSessionData": "s"}),
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 404
    challenge = challenge_of(tx)
    assert challenge.state == Challenge.IN_PROGRESS and challenge.creq_received_at is None


def test_an_app_channel_areq_gets_d_without_a_secure_session(ds, app, oob_card):
    tx = send_areq(ds, oob_card, **DECOUPLED)
    assert tx.ares["transStatus"] == "D" and tx.ares["acsDecConInd"] == "Y"
    assert "acsSignedContent" not in tx.ares and "acsURL" not in tx.ares
    assert challenge_of(tx).app_session_key_blob is None
