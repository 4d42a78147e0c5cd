"""The out-of-band challenge through HTTP: the DS's AReq, the 3DS SDK's CReqs, the issuer app's SDK
API calls with real WebAuthn assertions from the software authenticator."""

import copy
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.devices.models import Device
from apps.oob.models import AuthnRequest
from apps.threeds.challenge import challenges_time_out
from apps.threeds.models import Challenge, RiskPolicy, Transaction
from apps.threeds.outbound import notification_payload
from apps.threeds.risk import risk_policy_for
from tests.conftest import JsonClient
from tests.devices.authenticator import b64url_decode
from tests.factories import CardholderFactory, IssuerFactory, make_api_key
from tests.oob.conftest import RP_ID, creq, register_app, send_areq

pytestmark = pytest.mark.usefixtures("push_file", "sms_file")


def challenged(ds, pan, **overrides):
    tx = send_areq(ds, pan, **overrides)
    assert tx.ares["transStatus"] == "C", tx.ares
    return tx


def started(ds, pan):
    tx = challenged(ds, pan)
    cres = creq(ds, tx)
    assert cres["acsUiType"] == "04", cres
    return tx


def challenge_of(tx) -> Challenge:
    return Challenge.objects.select_related("transaction").get(transaction_id=tx.acs_trans_id)


# ---------------------------------------------------------------- choosing OOB


def test_a_cardholder_with_an_active_device_is_challenged_out_of_band(ds, app, oob_card):
    tx = challenged(ds, oob_card)
    assert tx.ares["authenticationType"] == "03"
    assert tx.ares["acsRenderingType"] == {"acsInterface": "01", "acsUiTemplate": "04"}
    assert challenge_of(tx).method == Challenge.OOB


def test_without_a_device_the_challenge_is_an_sms_otp(ds, oob_card):
    tx = challenged(ds, oob_card)
    assert tx.ares["authenticationType"] == "02"
    assert challenge_of(tx).method == Challenge.SMS_OTP


def test_a_revoked_device_does_not_count(ds, app, oob_card):
    Device.objects.filter(pk=app.device_id).update(status=Device.STATUS_REVOKED)
    assert challenged(ds, oob_card).ares["authenticationType"] == "02"


def test_a_policy_without_oob_uses_sms(ds, app, oob_card, issuer):
    RiskPolicy.objects.filter(issuer=issuer).update(allow_oob=False)
    assert challenged(ds, oob_card).ares["authenticationType"] == "02"


def test_an_issuer_without_webauthn_settings_uses_sms(ds, app, oob_card, issuer):
    issuer.webauthn_rp_id = ""
    issuer.save(update_fields=["webauthn_rp_id"])
    assert challenged(ds, oob_card).ares["authenticationType"] == "02"


# ---------------------------------------------------------------- the push and the pending request


def test_the_first_creq_pushes_a_silent_message_that_names_only_the_request(ds, app, oob_card, push_file):
    tx = challenged(ds, oob_card)
    assert push_file.messages() == []  # nothing before the cardholder is actually at the challenge
    creq(ds, tx)
    pushes = push_file.messages()
    assert len(pushes) == 1
    # The whole content of the push: which request to fetch; no merchant, amount or card.
    assert pushes[0]["data"] == {"type": "3ds_authn_request", "acsTransId": tx.acs_trans_id}
    assert "Tokyo Books" not in str(pushes[0]) and oob_card not in str(pushes[0])


def test_the_app_sees_the_confirmation_data_of_its_pending_request(ds, app, oob_card):
    tx = started(ds, oob_card)
    [pending] = app.pending()
    assert pending["acsTransId"] == tx.acs_trans_id
    assert pending["merchantName"] == "Tokyo Books"
    assert (pending["purchaseAmount"], pending["purchaseCurrency"], pending["purchaseExponent"]) == ("1500", "392", "0")
    assert pending["purchaseDate"] == tx.message["purchaseDate"]
    assert pending["threeDSRequestorAppURL"] == tx.message["threeDSRequestorAppURL"]
    assert pending["state"] == "pending" and pending["cardLast4"] == oob_card[-4:]
    assert oob_card not in str(pending)


def test_proceed_gives_request_options_bound_to_the_transaction_and_a_fresh_nonce(ds, app, oob_card):
    tx = started(ds, oob_card)
    first = app.proceed(tx.acs_trans_id).json()
    second = app.proceed(tx.acs_trans_id).json()
    challenge_1, challenge_2 = b64url_decode(first["challenge"]), b64url_decode(second["challenge"])
    assert challenge_1[:16] == uuid.UUID(tx.acs_trans_id).bytes == challenge_2[:16]
    assert challenge_1 != challenge_2 and len(challenge_1) == 32
    assert first["rpId"] == RP_ID and first["userVerification"] == "required"
    device = Device.objects.get(pk=app.device_id)
    assert len(first["allowCredentials"]) == 1 and b64url_decode(first["allowCredentials"][0]["id"]) == bytes(device.credential_id)


# ---------------------------------------------------------------- approve


def test_an_approved_request_ends_the_challenge_with_y(ds, app, oob_card, issuer):
    tx = started(ds, oob_card)
    r = app.approve(tx.acs_trans_id)
    assert r.status_code == 200, r.content
    assert r.json() == {"result": "verified", "threeDSRequestorAppURL": tx.message["threeDSRequestorAppURL"]}
    final = creq(ds, tx, oobContinue=True)
    assert final["transStatus"] == "Y" and final["challengeCompletionInd"] == "Y"
    row = Transaction.objects.get(pk=tx.acs_trans_id)
    assert row.eci == "05" and len(row.authentication_value) == 28 and row.authentication_type == "03"
    assert notification_payload(row)["operation"] == "3DS_CHALLENGE_OOB"
    assert notification_payload(row)["details"]["fallbackReason"] is None
    assert Device.objects.get(pk=app.device_id).sign_count == app.authenticator.sign_count
    assert AuthnRequest.objects.get(challenge_id=tx.acs_trans_id).state == AuthnRequest.APPROVED
    assert app.pending() == []
    kinds = list(AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id).values_list("kind", flat=True))
    for kind in ("oob.request_created", "oob.proceeded", "oob.approved", "threeds.challenge_finished"):
        assert kind in kinds


@pytest.mark.parametrize("enc", ["A128CBC-HS256", "A128GCM"])
def test_an_oob_challenge_through_jwe_for_each_enc(ds, app, oob_card, enc):
    # The SDK's whole OOB exchange sealed with either enc: the first CReq, an oobContinue before
    # the app answered, the final CRes after it; then the session key is gone.
    tx = send_areq(ds, oob_card, enc=enc)
    assert tx.ares["transStatus"] == "C" and tx.session.payload["acsTransID"] == tx.acs_trans_id
    assert creq(ds, tx)["acsUiType"] == "04"
    assert creq(ds, tx, oobContinue=True)["challengeCompletionInd"] == "N"
    assert challenge_of(tx).app_session_key_blob is not None  # ended out of band: kept for the final CRes
    assert app.approve(tx.acs_trans_id).status_code == 200
    final = creq(ds, tx, oobContinue=True)
    assert (final["transStatus"], final["challengeCompletionInd"], final["acsCounterAtoS"]) == ("Y", "Y", "002")
    assert challenge_of(tx).app_session_key_blob is None
    assert tx.session.send_raw(tx.session.encrypt(oobContinue=True))["errorCode"] == "302"


def test_while_the_app_has_not_answered_oob_continue_shows_the_oob_step_again(ds, app, oob_card):
    tx = started(ds, oob_card)
    cres = creq(ds, tx, oobContinue=True)
    assert cres["acsUiType"] == "04" and cres["challengeCompletionInd"] == "N"


def test_a_replayed_assertion_is_refused_and_changes_nothing(ds, app, oob_card):
    tx = started(ds, oob_card)
    options = app.proceed(tx.acs_trans_id).json()
    credential = app.assertion_for(options)
    assert app.assert_(tx.acs_trans_id, credential).status_code == 200
    again = app.assert_(tx.acs_trans_id, credential)
    assert again.status_code == 409 and again.json()["error"]["code"] == "authn_request_decided"
    assert Transaction.objects.get(pk=tx.acs_trans_id).trans_status == "Y"


def test_an_assertion_before_proceed_is_refused(ds, app, oob_card):
    tx = started(ds, oob_card)
    r = app.assert_(tx.acs_trans_id, app.authenticator.get_assertion(rp_id=RP_ID, challenge=b"x" * 32, origin=app.origin))
    assert r.status_code == 409 and r.json()["error"]["code"] == "proceed_required"


def test_options_of_an_earlier_proceed_no_longer_work(ds, app, oob_card):
    tx = started(ds, oob_card)
    stale = app.proceed(tx.acs_trans_id).json()
    app.proceed(tx.acs_trans_id)
    r = app.assert_(tx.acs_trans_id, app.assertion_for(stale))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_assertion"


# ---------------------------------------------------------------- refused assertions


@pytest.mark.parametrize(
    "knobs",
    [
        {"origin": "https://evil.example"},
        {"rp_id": "evil.example"},
        {"user_verified": False},
    ],
    ids=["wrong origin", "wrong rp id", "no user verification"],
)
def test_a_bad_assertion_is_refused_and_counted(ds, app, oob_card, knobs):
    tx = started(ds, oob_card)
    options = app.proceed(tx.acs_trans_id).json()
    r = app.assert_(tx.acs_trans_id, app.assertion_for(options, **knobs))
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "invalid_assertion"
    request = AuthnRequest.objects.get(challenge_id=tx.acs_trans_id)
    assert request.assertion_failures == 1 and request.state == AuthnRequest.PROCEEDED
    assert Transaction.objects.get(pk=tx.acs_trans_id).trans_status == ""
    # The cardholder can still get it right.
    good = app.assert_(tx.acs_trans_id, app.assertion_for(options))
    assert good.status_code == 200, good.content


def test_a_signature_by_another_key_is_refused(ds, app, oob_card):
    from tests.devices.authenticator import SoftwareAuthenticator

    tx = started(ds, oob_card)
    options = app.proceed(tx.acs_trans_id).json()
    impostor = SoftwareAuthenticator(credential_id=app.authenticator.credential_id)
    r = app.assert_(tx.acs_trans_id, impostor.get_assertion(rp_id=RP_ID, challenge=b64url_decode(options["challenge"]), origin=app.origin))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_assertion"


def test_assertion_failures_beyond_the_limit_fall_back_to_sms(ds, app, oob_card, sms_file):
    tx = started(ds, oob_card)
    options = app.proceed(tx.acs_trans_id).json()
    codes = [app.assert_(tx.acs_trans_id, app.assertion_for(options, origin="https://evil.example")).json()["error"]["code"] for _ in range(3)]
    assert codes == ["invalid_assertion", "invalid_assertion", "assertion_failed_final"]
    challenge = challenge_of(tx)
    assert challenge.method == Challenge.SMS_OTP and challenge.fallback_reason == "assertion_failed"
    assert len(sms_file.messages()) == 1
    assert app.assert_(tx.acs_trans_id, app.assertion_for(options)).status_code in (404, 409)


def test_a_cloned_authenticator_is_refused_and_the_device_blocked(ds, app, oob_card, sms_file):
    clone = copy.deepcopy(app.authenticator)
    first = started(ds, oob_card)
    assert app.approve(first.acs_trans_id).status_code == 200
    second = started(ds, oob_card)
    options = app.proceed(second.acs_trans_id).json()
    # The copy signs with the same key, but its counter is behind the original's.
    r = app.assert_(second.acs_trans_id, clone.get_assertion(rp_id=RP_ID, challenge=b64url_decode(options["challenge"]), origin=app.origin))
    assert r.status_code == 403 and r.json()["error"]["code"] == "device_blocked"
    device = Device.objects.get(pk=app.device_id)
    assert device.status == Device.STATUS_BLOCKED and "sign counter" in device.blocked_reason
    challenge = challenge_of(second)
    assert challenge.method == Challenge.SMS_OTP and challenge.fallback_reason == "device_blocked"
    assert app.client.get("/sdk/v1/authn-requests").status_code == 401
    # A blocked device is no longer a method for the next payment.
    assert challenged(ds, oob_card).ares["authenticationType"] == "02"


# ---------------------------------------------------------------- cancel, timeout: fallback to SMS


def test_cancel_in_the_app_falls_back_to_an_sms_code_in_the_same_transaction(ds, app, oob_card, sms_file):
    tx = started(ds, oob_card)
    r = app.cancel(tx.acs_trans_id)
    assert r.status_code == 200 and r.json() == {"result": "cancelled"}
    challenge = challenge_of(tx)
    assert challenge.method == Challenge.SMS_OTP and challenge.fallback_reason == "cancelled_in_app"
    assert challenge.otp_session_id is not None and len(sms_file.messages()) == 1
    cres = creq(ds, tx, oobContinue=True)
    assert cres["acsUiType"] == "01"
    final = creq(ds, tx, challengeDataEntry=sms_file.last_code())
    assert final["transStatus"] == "Y"
    row = Transaction.objects.get(pk=tx.acs_trans_id)
    payload = notification_payload(row)
    assert payload["operation"] == "3DS_CHALLENGE_OTP_SMS" and payload["details"]["fallbackReason"] == "cancelled_in_app"
    assert app.cancel(tx.acs_trans_id).status_code == 409


def test_cancel_without_fallback_allowed_ends_with_n(ds, app, oob_card, issuer, sms_file):
    RiskPolicy.objects.filter(issuer=issuer).update(allow_fallback_to_sms=False)
    tx = started(ds, oob_card)
    assert app.cancel(tx.acs_trans_id).status_code == 200
    row = Transaction.objects.get(pk=tx.acs_trans_id)
    assert (row.trans_status, row.challenge_cancel) == ("N", "01")
    assert sms_file.messages() == []
    payload = notification_payload(row)
    assert payload["operation"] == "3DS_CHALLENGE_OOB" and payload["details"]["fallbackReason"] == "cancelled_in_app"
    assert creq(ds, tx, oobContinue=True)["transStatus"] == "N"


def test_cancel_without_a_verified_phone_ends_with_n(ds, app, oob_card, cardholder, sms_file):
    cardholder.phones.update(verified=False)
    tx = started(ds, oob_card)
    app.cancel(tx.acs_trans_id)
    assert Transaction.objects.get(pk=tx.acs_trans_id).trans_status == "N"
    assert sms_file.messages() == []


def test_the_oob_wait_times_out_into_an_sms_code(ds, app, oob_card, issuer, sms_file, committed):
    tx = started(ds, oob_card)
    wait = risk_policy_for(issuer).oob_timeout_seconds
    assert committed(challenges_time_out, now=timezone.now() + timedelta(seconds=wait - 5)) == 0
    assert committed(challenges_time_out, now=timezone.now() + timedelta(seconds=wait + 1)) == 1
    challenge = challenge_of(tx)
    assert challenge.method == Challenge.SMS_OTP and challenge.fallback_reason == "oob_timeout"
    assert AuthnRequest.objects.get(challenge_id=tx.acs_trans_id).state == AuthnRequest.EXPIRED
    assert len(sms_file.messages()) == 1
    assert app.pending() == []
    assert app.proceed(tx.acs_trans_id).status_code == 409


def test_an_app_that_answers_after_the_wait_falls_back_itself(ds, app, oob_card, sms_file):
    tx = started(ds, oob_card)
    options = app.proceed(tx.acs_trans_id).json()
    AuthnRequest.objects.filter(challenge_id=tx.acs_trans_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = app.assert_(tx.acs_trans_id, app.assertion_for(options))
    assert r.status_code == 409 and r.json()["error"]["code"] == "authn_request_expired"
    assert challenge_of(tx).fallback_reason == "oob_timeout" and len(sms_file.messages()) == 1


def test_a_proceed_after_the_wait_falls_back_and_says_so(ds, app, oob_card, sms_file):
    tx = started(ds, oob_card)
    AuthnRequest.objects.filter(challenge_id=tx.acs_trans_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = app.proceed(tx.acs_trans_id)
    assert r.status_code == 409 and r.json()["error"]["code"] == "authn_request_expired"
    # The answer is an error, but the fallback it triggered is kept.
    assert challenge_of(tx).fallback_reason == "oob_timeout" and len(sms_file.messages()) == 1
    assert AuthnRequest.objects.get(challenge_id=tx.acs_trans_id).state == AuthnRequest.EXPIRED


def test_the_oob_timeout_without_fallback_ends_with_n_14(ds, app, oob_card, issuer, committed):
    RiskPolicy.objects.filter(issuer=issuer).update(allow_fallback_to_sms=False)
    tx = started(ds, oob_card)
    committed(challenges_time_out, now=timezone.now() + timedelta(seconds=risk_policy_for(issuer).oob_timeout_seconds + 1))
    row = Transaction.objects.get(pk=tx.acs_trans_id)
    assert (row.trans_status, row.trans_status_reason) == ("N", "14")


def test_a_challenge_cancelled_by_the_sdk_withdraws_the_app_request(ds, app, oob_card):
    tx = started(ds, oob_card)
    assert creq(ds, tx, challengeCancel="01")["transStatus"] == "N"
    assert AuthnRequest.objects.get(challenge_id=tx.acs_trans_id).state == AuthnRequest.WITHDRAWN
    assert app.pending() == []
    assert app.proceed(tx.acs_trans_id).status_code == 409


def test_a_push_that_cannot_be_delivered_falls_back_to_sms_at_once(ds, app, oob_card, settings, sms_file):
    # A push token the provider says is gone for good: the file adapter has no such notion, the
    # device simply lost its token (e.g. the app data was wiped before re-registration).
    Device.objects.filter(pk=app.device_id).update(push_token_blob=None)
    tx = started(ds, oob_card)
    challenge = challenge_of(tx)
    assert challenge.method == Challenge.SMS_OTP and challenge.fallback_reason == "push_failed"
    assert AuthnRequest.objects.get(challenge_id=tx.acs_trans_id).state == AuthnRequest.UNDELIVERABLE
    assert len(sms_file.messages()) == 1


def test_one_undeliverable_push_does_not_fall_back_while_another_device_can_be_reached(
    ds, app, oob_card, api, cardholder, commit_client, sms_file, push_file
):
    second = register_app(api, cardholder, commit_client())
    Device.objects.filter(pk=app.device_id).update(push_token_blob=None)
    tx = started(ds, oob_card)
    assert challenge_of(tx).method == Challenge.OOB and len(push_file.messages()) == 1
    assert second.approve(tx.acs_trans_id).status_code == 200
    assert sms_file.messages() == []


def test_push_bombing_is_refused_and_the_payment_falls_back_to_sms(ds, app, oob_card, settings, sms_file, push_file):
    settings.PUSH_MAX_PER_DEVICE_PER_MINUTE = 2
    first, second = started(ds, oob_card), started(ds, oob_card)
    third = challenged(ds, oob_card)
    creq(ds, third)
    assert len(push_file.messages()) == 2
    assert challenge_of(first).method == challenge_of(second).method == Challenge.OOB
    challenge = challenge_of(third)
    assert challenge.method == Challenge.SMS_OTP and challenge.fallback_reason == "push_rate_limited"


# ---------------------------------------------------------------- whose request


def test_another_cardholders_device_cannot_see_or_decide_the_request(ds, app, oob_card, api, issuer, commit_client):
    tx = started(ds, oob_card)
    other = register_app(api, CardholderFactory(issuer=issuer), commit_client())
    assert other.pending() == []
    for call in (other.proceed, other.cancel):
        r = call(tx.acs_trans_id)
        assert r.status_code == 404 and r.json()["error"]["code"] == "authn_request_not_found"
    assert AuthnRequest.objects.get(challenge_id=tx.acs_trans_id).state == AuthnRequest.PENDING


def test_another_issuers_device_cannot_see_or_decide_the_request(ds, app, oob_card, commit_client):
    tx = started(ds, oob_card)
    other_issuer = IssuerFactory(webauthn_rp_id=RP_ID, webauthn_origins=[app.origin])
    other_api = JsonClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(other_issuer)}")
    other = register_app(other_api, CardholderFactory(issuer=other_issuer), commit_client())
    assert other.pending() == []
    assert other.proceed(tx.acs_trans_id).status_code == 404
    assert other.assert_(tx.acs_trans_id, {"id": "x"}).status_code == 404


def test_a_second_device_of_the_cardholder_can_answer_but_only_with_its_own_proceed(ds, app, oob_card, api, cardholder, push_file, commit_client):
    second = register_app(api, cardholder, commit_client())
    tx = started(ds, oob_card)
    assert len(push_file.messages()) == 2  # one per active device
    options = app.proceed(tx.acs_trans_id).json()
    r = second.assert_(tx.acs_trans_id, second.assertion_for(options))
    assert r.status_code == 409 and r.json()["error"]["code"] == "proceed_required"
    assert second.approve(tx.acs_trans_id).status_code == 200


def test_sdk_calls_need_a_device_token(oob_card):
    anonymous = JsonClient()
    assert anonymous.get("/sdk/v1/authn-requests").status_code == 401
    assert anonymous.post(f"/sdk/v1/authn-requests/{uuid.uuid4()}/proceed").status_code == 401


def test_a_malformed_request_id_is_not_found(app):
    r = app.proceed("not-a-uuid")
    assert r.status_code == 404


def test_a_malformed_assertion_body_is_a_400(ds, app, oob_card):
    tx = started(ds, oob_card)
    app.proceed(tx.acs_trans_id)
    for body in ({}, {"credential": "text"}, {"credential": {}, "extra": 1}):
        r = app.client.post(f"/sdk/v1/authn-requests/{tx.acs_trans_id}/assertion", body)
        assert r.status_code == 400, (body, r.content)
