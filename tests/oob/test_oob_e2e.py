"""The out-of-band challenge end to end over REAL HTTP, with the real moving parts: the ACS on
`live_server`, a REAL Celery worker process on Redis against the PostgreSQL test database
(tests/conftest.py `celery_worker`), the issuer app as an HTTP client with a software WebAuthn
authenticator (tests/oob/e2e_helpers.py), the DS / 3DS SDK / issuer backend of
tests/threeds/harness.py.

What the worker does here: the push to the device (the `push.send` task, through the real FCM
HTTP v1 client to the fake FCM server — the session worker is started with PUSH_BACKEND=fcm,
see the note below), the SMS of a fallback (through the real twilio client to the fake Twilio
server), the RReq to the harness's dsURL and the signed 3DS notification to the harness's issuer
backend.

Note on the push backend: `celery_worker` is session-scoped and builds its environment as
`{**os.environ, **twilio_server.env(), **fcm_server.env()}`, so PUSH_BACKEND is always `fcm` for
it; PUSH_BACKEND=file in the environment cannot reach it. The push content is therefore checked
at the fake FCM server (which also checks the whole message shape and the OAuth2 flow); the
`file` backend is checked in tests/oob/test_oob_browser.py, where tasks run in the server's process.

Skipped without CELERY_BROKER_URL and a PostgreSQL DATABASE_URL (as tests/threeds/test_e2e_flows.py).
"""

import re
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.devices.models import Device
from apps.oob.models import AuthnRequest
from apps.push.models import PushDelivery
from apps.threeds.models import Challenge, RReqDelivery, Transaction
from apps.webhooks.models import WebhookDelivery
from tests.conftest import wait_for
from tests.oob.e2e_helpers import HttpApp, make_oob_bank, register_app_over_http
from tests.threeds.harness import Acs, TwilioInbox, endpoints  # noqa: F401 (fixture)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PUSH_DATA_KEYS = {"type", "acsTransId"}


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def twilio(twilio_server, settings):
    """The session's fake Twilio, emptied; this process's OUTBOUND_* settings match the worker's."""
    twilio_server.reset()
    for name, value in twilio_server.django_settings().items():
        setattr(settings, name, value)
    yield twilio_server
    assert twilio_server.violations == [], "requests or answers that break Twilio's OpenAPI description"


@pytest.fixture
def fcm(fcm_server, settings):
    """The session's fake FCM, emptied; this process's push settings match the worker's (the
    live server records the delivery, with its max_tries, before the worker sends it)."""
    fcm_server.reset()
    for name, value in fcm_server.django_settings().items():
        setattr(settings, name, value)
    yield fcm_server
    assert fcm_server.violations == [], "pushes or token requests a real FCM would reject"


@pytest.fixture
def acs(celery_worker, live_server, settings, twilio, fcm, endpoints):  # noqa: F811
    settings.PUBLIC_BASE_URL = live_server.url
    yield Acs(live_server.url, endpoints, TwilioInbox(twilio))
    assert endpoints.violations == [], "RReqs a DS would reject, or posts to unknown paths"


@pytest.fixture
def bank(endpoints):  # noqa: F811
    return make_oob_bank(notification_base_url=endpoints.issuer_base_url)


@pytest.fixture
def app(acs, bank) -> HttpApp:
    return register_app_over_http(acs.base_url, bank)


# ---------------------------------------------------------------- steps


def oob_started(acs, bank):
    """AReq → ARes C with authenticationType 03; the 3DS SDK's first CReq → the OOB CRes."""
    auth = acs.areq(pan=bank.pan, channel="01", threeDSRequestorChallengeInd="04")
    assert (auth.trans_status, auth.ares["authenticationType"]) == ("C", "03"), auth.ares
    assert auth.ares["acsRenderingType"] == {"acsInterface": "01", "acsUiTemplate": "04"}
    # Nothing is pushed before the cardholder is actually at the challenge (the first CReq).
    assert not PushDelivery.objects.filter(acs_trans_id=auth.acs_trans_id).exists()
    sdk = auth.app()
    first = sdk.start()
    assert (first["messageType"], first["acsUiType"], first["challengeCompletionInd"]) == ("CRes", "04", "N"), first
    assert first["oobContinueLabel"] and "transStatus" not in first
    return auth, sdk


def the_push(fcm, app: HttpApp, acs_trans_id: str):
    """The push the worker sent to this device for this request, as FCM received it."""
    messages = wait_for(
        lambda: [m for m in fcm.accepted(push_token=app.push_token) if m.data.get("acsTransId") == acs_trans_id], timeout=20
    )
    assert len(messages) == 1, [m.raw for m in messages]
    return messages[0]


def check_notification(note, bank, tx: Transaction, *, operation: str, status: str, fallback_reason: str | None) -> dict:
    """The signed 3DS notification of SPEC §5.4 for this transaction."""
    assert note.signature_valid(bank.webhook_secret), "X-Signature does not verify with the issuer's secret"
    assert not note.signature_valid("whsec_another_secret")
    assert (note.issuer_id, note.card_id) == (bank.issuer.issuer_id, bank.card.card_id)
    payload = note.payload
    assert (payload["operation"], payload["status"]) == (operation, status), payload
    assert UUID.match(payload["operationId"]) and payload["consumerId"] == bank.cardholder.external_id
    details = payload["details"]
    assert details["acsTransactionId"] == str(tx.acs_trans_id)
    assert (details["threeDSServerTransId"], details["dsTransId"]) == (str(tx.three_ds_server_trans_id), str(tx.ds_trans_id))
    assert (details["transStatus"], details["eci"]) == (tx.trans_status, tx.eci or None)
    assert details["fallbackReason"] == fallback_reason
    assert (details["merchantName"], details["purchaseAmount"], details["purchaseCurrency"]) == ("Tokyo Books", "1500", "392")
    assert bank.pan not in note.body.decode()
    return payload


def outbound_settled(acs_trans_id):
    """Every RReq and notification recorded for the transaction has reached a final state, so
    what the harness received is all there will be."""
    rreqs = list(RReqDelivery.objects.filter(transaction_id=acs_trans_id))
    hooks = list(WebhookDelivery.objects.filter(acs_trans_id=acs_trans_id))
    done = rreqs and hooks and all(d.status in RReqDelivery.TERMINAL for d in rreqs) and all(h.status in WebhookDelivery.TERMINAL for h in hooks)
    return (rreqs, hooks) if done else None


# ---------------------------------------------------------------- approve in the app


def test_the_app_approves_and_the_sdk_gets_y_with_one_push_one_rreq_one_notification(acs, bank, app, endpoints, fcm):  # noqa: F811
    auth, sdk = oob_started(acs, bank)

    # The worker pushed a silent message to the device: it names the pending request, nothing else.
    push = the_push(fcm, app, auth.acs_trans_id)
    assert push.data == {"type": "3ds_authn_request", "acsTransId": auth.acs_trans_id}
    assert set(push.data) == PUSH_DATA_KEYS
    delivery = wait_for(lambda: PushDelivery.objects.filter(acs_trans_id=auth.acs_trans_id, status=PushDelivery.SENT).first())
    assert str(delivery.device_id) == app.device_id and delivery.provider == "fcm"

    # On the push, the app fetches the request and shows the confirmation data (D1 SDK map).
    [pending] = app.pending()
    assert pending["acsTransId"] == auth.acs_trans_id == push.data["acsTransId"]
    assert (pending["merchantName"], pending["purchaseAmount"], pending["purchaseCurrency"], pending["purchaseExponent"]) == (
        "Tokyo Books", "1500", "392", "0")
    assert pending["purchaseDate"] == auth.message["purchaseDate"] and pending["state"] == "pending"
    assert bank.pan not in str(pending)

    # The SDK's "continue" before the app answered: still the OOB step.
    waiting = sdk.send(oobContinue=True)
    assert (waiting["acsUiType"], waiting["challengeCompletionInd"]) == ("04", "N")

    approved = app.approve(auth.acs_trans_id)
    assert approved.status_code == 200, approved.text
    assert approved.json()["result"] == "verified"

    final = sdk.send(oobContinue=True)
    assert (final["messageType"], final["transStatus"], final["challengeCompletionInd"]) == ("CRes", "Y", "Y"), final
    assert final["acsTransID"] == auth.acs_trans_id and final["sdkTransID"] == auth.message["sdkTransID"]

    rreq = auth.rreq()
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    assert (rreq["transStatus"], rreq["eci"], rreq["authenticationType"]) == ("Y", "05", "03")
    assert rreq["authenticationValue"] == tx.authentication_value and len(tx.authentication_value) == 28
    assert "transStatusReason" not in rreq and "challengeCancel" not in rreq
    note = endpoints.wait_notification(auth.acs_trans_id)
    check_notification(note, bank, tx, operation="3DS_CHALLENGE_OOB", status="SUCCESSFUL", fallback_reason=None)

    rreqs, hooks = wait_for(lambda: outbound_settled(auth.acs_trans_id))
    assert len(rreqs) == 1 and len(hooks) == 1
    assert len(endpoints.rreqs(auth.acs_trans_id)) == 1 and len(endpoints.notifications(auth.acs_trans_id)) == 1
    # No SMS at all, the device's counter recorded, the request gone from the app's list.
    assert acs.inbox.bodies(bank.phone) == []
    assert Device.objects.get(pk=app.device_id).sign_count == app.authenticator.sign_count
    assert app.pending() == []
    assert len(fcm.messages(push_token=app.push_token)) == 1


# ---------------------------------------------------------------- cancel in the app


def test_a_cancel_in_the_app_falls_back_to_an_sms_code_sent_by_the_worker(acs, bank, app, endpoints, fcm):  # noqa: F811
    auth, sdk = oob_started(acs, bank)
    the_push(fcm, app, auth.acs_trans_id)
    [pending] = app.pending()
    assert pending["acsTransId"] == auth.acs_trans_id

    cancelled = app.cancel(auth.acs_trans_id)
    assert cancelled.status_code == 200 and cancelled.json() == {"result": "cancelled"}, cancelled.text

    # The worker sends the SMS through the real twilio client; the cardholder reads it.
    code = acs.code_for(bank.phone)
    otp_step = sdk.send(oobContinue=True)
    assert (otp_step["acsUiType"], otp_step["challengeCompletionInd"]) == ("01", "N"), otp_step
    assert bank.phone[-4:] in otp_step["challengeInfoText"]
    final = sdk.submit(code)
    assert (final["transStatus"], final["challengeCompletionInd"]) == ("Y", "Y"), final

    rreq = auth.rreq()
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    assert (rreq["transStatus"], rreq["eci"], rreq["authenticationType"]) == ("Y", "05", "02")
    assert tx.challenge.fallback_reason == "cancelled_in_app" and tx.challenge.method == Challenge.SMS_OTP
    note = endpoints.wait_notification(auth.acs_trans_id)
    check_notification(note, bank, tx, operation="3DS_CHALLENGE_OTP_SMS", status="SUCCESSFUL", fallback_reason="cancelled_in_app")

    rreqs, hooks = wait_for(lambda: outbound_settled(auth.acs_trans_id))
    assert len(rreqs) == 1 and len(hooks) == 1 and len(endpoints.rreqs(auth.acs_trans_id)) == 1
    assert len(acs.inbox.bodies(bank.phone)) == 1
    assert AuthnRequest.objects.get(challenge_id=auth.acs_trans_id).state == AuthnRequest.CANCELLED
    # The app cannot act on it any more.
    again = app.cancel(auth.acs_trans_id)
    assert again.status_code == 409 and again.json()["error"]["code"] == "authn_request_decided"
    assert app.pending() == []


# ---------------------------------------------------------------- a push that cannot be delivered


def test_a_push_fcm_refuses_for_good_falls_back_to_sms_without_waiting_for_the_oob_timeout(acs, bank, app, endpoints, fcm):  # noqa: F811
    fcm.program(app.push_token, "unregistered")  # the app was uninstalled: FCM answers 404 UNREGISTERED
    auth, sdk = oob_started(acs, bank)

    code = acs.code_for(bank.phone)  # the worker gave up on the push and the challenge fell back
    challenge = Challenge.objects.get(transaction_id=auth.acs_trans_id)
    assert (challenge.method, challenge.fallback_reason) == (Challenge.SMS_OTP, "push_failed")
    delivery = PushDelivery.objects.get(acs_trans_id=auth.acs_trans_id)
    # A permanent error: one try, never retried, reported to the OOB flow once.
    assert (delivery.status, delivery.tries, delivery.error_code) == (PushDelivery.FAILED, 1, "unregistered")
    assert delivery.undeliverable_reported_at is not None
    assert [m.outcome for m in fcm.messages(push_token=app.push_token)] == ["error 404"]
    assert AuthnRequest.objects.get(challenge_id=auth.acs_trans_id).state == AuthnRequest.UNDELIVERABLE
    assert app.pending() == []

    assert sdk.send(oobContinue=True)["acsUiType"] == "01"
    assert sdk.submit(code)["transStatus"] == "Y"
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    check_notification(endpoints.wait_notification(auth.acs_trans_id), bank, tx, operation="3DS_CHALLENGE_OTP_SMS",
                       status="SUCCESSFUL", fallback_reason="push_failed")
    assert auth.rreq()["transStatus"] == "Y"


# ---------------------------------------------------------------- the app answers after the OOB wait

@pytest.mark.parametrize(
    "late_call",
    ["proceed", "assertion"],
)
def test_an_app_answering_after_the_oob_wait_gets_409_and_the_challenge_falls_back_to_sms_at_once(
    acs, bank, app, endpoints, fcm, late_call  # noqa: F811
):
    auth, sdk = oob_started(acs, bank)
    the_push(fcm, app, auth.acs_trans_id)
    options = app.proceed(auth.acs_trans_id).json() if late_call == "assertion" else None
    # The cardholder opens the app after the OOB wait ran out, before the timeout sweep ran (no
    # beat here): the wait's end is moved into the past, nothing else is touched.
    AuthnRequest.objects.filter(challenge_id=auth.acs_trans_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    if late_call == "proceed":
        late = app.proceed(auth.acs_trans_id)
    else:
        late = app.send_assertion(auth.acs_trans_id, app.assertion_for(options))
    assert late.status_code == 409 and late.json()["error"]["code"] == "authn_request_expired", late.text

    # The answer came after the fallback was committed: the state is there already.
    challenge = Challenge.objects.get(transaction_id=auth.acs_trans_id)
    assert (challenge.method, challenge.fallback_reason) == (Challenge.SMS_OTP, "oob_timeout")
    assert AuthnRequest.objects.get(challenge_id=auth.acs_trans_id).state == AuthnRequest.EXPIRED
    code = acs.code_for(bank.phone, timeout=15)
    assert sdk.send(oobContinue=True)["acsUiType"] == "01"
    assert sdk.submit(code)["transStatus"] == "Y"
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    check_notification(endpoints.wait_notification(auth.acs_trans_id), bank, tx, operation="3DS_CHALLENGE_OTP_SMS",
                       status="SUCCESSFUL", fallback_reason="oob_timeout")
    assert app.pending() == []


# ---------------------------------------------------------------- decided once


def test_two_parallel_assertions_verify_once_with_one_rreq_and_one_notification(acs, bank, app, endpoints, fcm):  # noqa: F811
    auth, sdk = oob_started(acs, bank)
    the_push(fcm, app, auth.acs_trans_id)
    proceeded = app.proceed(auth.acs_trans_id)
    assert proceeded.status_code == 200, proceeded.text
    options = proceeded.json()
    # Two genuine assertions for the same options (counters 1 and 2): each would verify alone.
    credentials = [app.assertion_for(options), app.assertion_for(options)]
    sessions = [app.new_session(), app.new_session()]
    barrier = threading.Barrier(2)
    responses: list = [None, None]

    def post(i):
        barrier.wait()
        responses[i] = app.send_assertion(auth.acs_trans_id, credentials[i], session=sessions[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None for r in responses), "an assertion call did not return"

    by_status = sorted(responses, key=lambda r: r.status_code)
    assert [r.status_code for r in by_status] == [200, 409], [r.text for r in responses]
    assert by_status[0].json()["result"] == "verified"
    assert by_status[1].json()["error"]["code"] == "authn_request_decided"

    assert sdk.send(oobContinue=True)["transStatus"] == "Y"
    assert auth.rreq()["transStatus"] == "Y"
    endpoints.wait_notification(auth.acs_trans_id)
    rreqs, hooks = wait_for(lambda: outbound_settled(auth.acs_trans_id))
    assert len(rreqs) == 1 and len(hooks) == 1
    assert len(endpoints.rreqs(auth.acs_trans_id)) == 1 and len(endpoints.notifications(auth.acs_trans_id)) == 1
    events = AuditEvent.objects.filter(acs_trans_id=auth.acs_trans_id)
    assert events.filter(kind="oob.approved").count() == 1
    assert events.filter(kind="threeds.challenge_finished").count() == 1
    assert AuthnRequest.objects.get(challenge_id=auth.acs_trans_id).state == AuthnRequest.APPROVED
    assert acs.inbox.bodies(bank.phone) == []
