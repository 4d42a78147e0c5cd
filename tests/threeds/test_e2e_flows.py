"""End to end over real HTTP, with the real moving parts: the ACS served by `live_server`, a REAL
Celery worker process on Redis against the PostgreSQL test database, SMS sent by that worker
through the real twilio client to the fake Twilio server, RReqs and issuer notifications sent by
the worker to the harness's DS and issuer backend (tests/threeds/harness.py).

Skipped without CELERY_BROKER_URL and a PostgreSQL DATABASE_URL (they run in CI). The last test
runs the same harness in-process (SMS to the `file` backend, eager tasks), so it also runs locally.
"""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.cards.models import Card
from apps.threeds.models import Challenge, RReqDelivery, Transaction
from apps.webhooks.models import WebhookDelivery
from tests.conftest import PROJECT_ROOT, _database_url_for_worker, wait_for
from tests.threeds.harness import Acs, FileInbox, TwilioInbox, endpoints, make_bank, other_code  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)
worker = pytest.mark.worker

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
NOTIFICATION_DETAILS = {
    "acsTransactionId", "threeDSServerTransId", "dsTransId", "transStatus", "transStatusReason", "eci", "merchantName",
    "purchaseAmount", "purchaseCurrency", "fallbackReason",
}


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def twilio(twilio_server, settings):
    """The session's fake Twilio, emptied; this process's OUTBOUND_* settings match the worker's
    (the live server writes RReq deliveries with this process's OUTBOUND_MAX_TRIES)."""
    twilio_server.reset()
    for name, value in twilio_server.django_settings().items():
        setattr(settings, name, value)
    yield twilio_server
    assert twilio_server.violations == [], "requests or answers that break Twilio's OpenAPI description"


@pytest.fixture
def acs(celery_worker, live_server, settings, twilio, endpoints):  # noqa: F811
    settings.PUBLIC_BASE_URL = live_server.url  # acsURL and callback URLs name the live server
    yield Acs(live_server.url, endpoints, TwilioInbox(twilio))
    assert endpoints.violations == [], "RReqs a DS would reject, or posts to unknown paths"


@pytest.fixture
def bank(endpoints):  # noqa: F811
    return make_bank(notification_base_url=endpoints.issuer_base_url)


def challenged(acs, bank, channel="01", **overrides):
    auth = acs.areq(pan=bank.pan, channel=channel, threeDSRequestorChallengeInd="04", **overrides)
    assert auth.trans_status == "C", auth.ares
    assert "eci" not in auth.ares and "authenticationValue" not in auth.ares
    return auth


def rreq_delivery(acs_trans_id, timeout=20.0) -> RReqDelivery:
    return wait_for(
        lambda: RReqDelivery.objects.filter(transaction_id=acs_trans_id, status__in=RReqDelivery.TERMINAL).first(), timeout=timeout
    )


def check_notification(note, bank, tx: Transaction, *, operation: str, status: str) -> dict:
    """The signed 3DS notification of SPEC §5.4, exactly."""
    assert note.signature_valid(bank.webhook_secret), "X-Signature does not verify with the issuer's secret"
    assert not note.signature_valid("whsec_another_secret")
    assert note.headers.get("Content-Type", "").startswith("application/json")
    assert (note.issuer_id, note.card_id) == (bank.issuer.issuer_id, bank.card.card_id)
    payload = note.payload
    expected_keys = {"operationId", "operation", "status", "startTime", "consumerId", "details"} | ({"error"} if status == "FAILED" else set())
    assert set(payload) == expected_keys
    assert UUID.match(payload["operationId"])
    assert (payload["operation"], payload["status"]) == (operation, status)
    assert ISO_UTC.match(payload["startTime"]), payload["startTime"]
    assert payload["consumerId"] == bank.cardholder.external_id
    details = payload["details"]
    assert set(details) == NOTIFICATION_DETAILS
    assert details["acsTransactionId"] == str(tx.acs_trans_id)
    assert details["threeDSServerTransId"] == str(tx.three_ds_server_trans_id)
    assert details["dsTransId"] == str(tx.ds_trans_id)
    assert details["transStatus"] == tx.trans_status
    assert details["transStatusReason"] == (tx.trans_status_reason or None)
    assert details["eci"] == (tx.eci or None)
    assert (details["merchantName"], details["purchaseAmount"], details["purchaseCurrency"]) == ("Tokyo Books", "1500", "392")
    if status == "FAILED":
        assert set(payload["error"]) == {"code", "message"} and payload["error"]["message"]
    assert bank.pan not in note.body.decode()
    return payload


def no_outbound_for(acs_trans_id) -> bool:
    return not RReqDelivery.objects.filter(transaction_id=acs_trans_id).exists()


# ---------------------------------------------------------------- frictionless and declines in the ARes


@worker
def test_frictionless_y_sends_a_signed_notification_and_no_rreq(acs, bank, endpoints):  # noqa: F811
    auth = acs.areq(pan=bank.pan, channel="01")
    ares = auth.ares
    assert (ares["transStatus"], ares["eci"]) == ("Y", "05") and len(ares["authenticationValue"]) == 28

    note = endpoints.wait_notification(auth.acs_trans_id)
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    payload = check_notification(note, bank, tx, operation="3DS_FRICTIONLESS", status="SUCCESSFUL")
    assert payload["details"]["transStatusReason"] is None and payload["details"]["fallbackReason"] is None
    assert tx.authentication_value == ares["authenticationValue"]
    # No challenge, so no RReq: none recorded, none received.
    assert no_outbound_for(auth.acs_trans_id) and endpoints.rreqs(auth.acs_trans_id) == []
    assert acs.inbox.bodies(bank.phone) == []


@worker
def test_an_unknown_card_is_n_08_with_nothing_sent(acs, bank, endpoints):  # noqa: F811
    auth = acs.areq(pan="4000000000000002", channel="01")
    assert (auth.trans_status, auth.ares["transStatusReason"]) == ("N", "08")
    assert "authenticationValue" not in auth.ares
    # The outbound messages are recorded with the decision: there are none (no issuer to notify, no challenge).
    assert no_outbound_for(auth.acs_trans_id)
    assert not WebhookDelivery.objects.exists()
    time.sleep(1.0)
    assert endpoints.rreqs() == [] and endpoints.notifications() == []


@worker
@pytest.mark.parametrize(
    "status, reason",
    [(Card.LOST_STOLEN, "10"), (Card.SUSPENDED, "12"), (Card.CLOSED, "12"), ("expired", "05")],
)
def test_each_card_status_is_declined_in_the_ares_and_notified(acs, bank, endpoints, status, reason):  # noqa: F811
    if status == "expired":
        last_year = timezone.now().year - 1
        Card.objects.filter(pk=bank.card.pk).update(expiry_year=last_year)
    else:
        Card.objects.filter(pk=bank.card.pk).update(status=status)
    auth = acs.areq(pan=bank.pan, channel="02", threeDSRequestorChallengeInd="04")
    assert (auth.trans_status, auth.ares["transStatusReason"], auth.ares["eci"]) == ("N", reason, "07")
    assert "acsURL" not in auth.ares and "authenticationValue" not in auth.ares

    note = endpoints.wait_notification(auth.acs_trans_id)
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    payload = check_notification(note, bank, tx, operation="3DS_FRICTIONLESS", status="FAILED")
    assert payload["details"]["transStatusReason"] == reason
    assert no_outbound_for(auth.acs_trans_id) and endpoints.rreqs() == []
    assert acs.inbox.bodies(bank.phone) == []


@worker
def test_velocity_over_the_limit_is_n_04(acs, endpoints):  # noqa: F811
    bank = make_bank(notification_base_url=endpoints.issuer_base_url, velocity_max_per_hour=2, velocity_warn_per_hour=2)
    first, second = (acs.areq(pan=bank.pan, channel="01") for _ in range(2))
    assert [first.trans_status, second.trans_status] == ["Y", "Y"]
    third = acs.areq(pan=bank.pan, channel="01")
    assert (third.trans_status, third.ares["transStatusReason"]) == ("N", "04")
    tx = Transaction.objects.get(pk=third.acs_trans_id)
    assert any(rule["rule"] == "velocity_exceeded" for rule in tx.risk_rules)
    payload = check_notification(endpoints.wait_notification(third.acs_trans_id), bank, tx, operation="3DS_FRICTIONLESS", status="FAILED")
    assert payload["details"]["transStatusReason"] == "04"


# ---------------------------------------------------------------- app challenges


@worker
def test_app_challenge_success_sms_rreq_notification_and_stripe(acs, bank, endpoints, celery_worker):  # noqa: F811
    auth = challenged(acs, bank)
    app = auth.app()
    first = app.start()
    assert (first["messageType"], first["acsUiType"], first["challengeCompletionInd"]) == ("CRes", "01", "N")
    assert bank.phone[-4:] in first["challengeInfoText"] and bank.phone not in first["challengeInfoText"]

    code = acs.code_for(bank.phone)  # the worker sent it through the real twilio client
    [sms] = acs.inbox.server.accepted(to=bank.phone)
    assert sms.form["From"] and bank.pan not in sms.body

    final = app.submit(code)
    assert final == {
        "messageType": "CRes", "messageVersion": "2.2.0", "threeDSServerTransID": auth.message["threeDSServerTransID"],
        "acsTransID": auth.acs_trans_id, "sdkTransID": auth.message["sdkTransID"], "transStatus": "Y",
        "challengeCompletionInd": "Y", "acsCounterAtoS": "001",
    }

    rreq = auth.rreq()
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    # The ARes said C: the result exists only in the final record, which the RReq carries.
    assert (rreq["transStatus"], rreq["eci"], rreq["interactionCounter"]) == ("Y", "05", "01")
    assert rreq["authenticationValue"] == tx.authentication_value and len(tx.authentication_value) == 28
    assert (rreq["dsTransID"], rreq["sdkTransID"], rreq["messageCategory"]) == (auth.message["dsTransID"], auth.message["sdkTransID"], "01")
    assert "transStatusReason" not in rreq and "challengeCancel" not in rreq

    delivery = rreq_delivery(auth.acs_trans_id)
    assert (delivery.status, delivery.results_status, delivery.tries) == (RReqDelivery.SUCCEEDED, "01", 1)
    assert [(a.status_code, a.results_status) for a in delivery.attempts.all()] == [(200, "01")]
    assert len(endpoints.rreqs(auth.acs_trans_id)) == 1

    note = endpoints.wait_notification(auth.acs_trans_id)
    check_notification(note, bank, tx, operation="3DS_CHALLENGE_OTP_SMS", status="SUCCESSFUL")

    api = acs.api(bank.api_key)
    verified = api.post(
        f"{acs.base_url}/api/v1/authentication-values/verify",
        json={"pan": bank.pan, "ds_trans_id": auth.message["dsTransID"], "authentication_value": rreq["authenticationValue"],
              "purchase_amount": "1500", "purchase_currency": "392"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["valid"] is True and verified.json()["acs_trans_id"] == auth.acs_trans_id

    stripe = api.get(f"{acs.base_url}/api/v1/transactions/{auth.acs_trans_id}/stripe-import").json()
    three_d_secure = stripe["payment_method_options"]["card"]["three_d_secure"]
    assert (three_d_secure["cryptogram"], three_d_secure["electronic_commerce_indicator"]) == (rreq["authenticationValue"], "05")
    assert (three_d_secure["transaction_id"], three_d_secure["ares_trans_status"]) == (auth.message["dsTransID"], "C")

    # One SMS, and neither the PAN nor the code in the worker's log.
    assert len(acs.inbox.bodies(bank.phone)) == 1
    log = celery_worker.log_path.read_text(errors="replace")
    assert bank.pan not in log and code not in log


@worker
def test_a_wrong_code_then_the_right_one(acs, bank, endpoints):  # noqa: F811
    auth = challenged(acs, bank)
    app = auth.app()
    app.start()
    code = acs.code_for(bank.phone)
    wrong = app.submit(other_code(code))
    assert (wrong["messageType"], wrong["challengeCompletionInd"], wrong["challengeInfoTextIndicator"]) == ("CRes", "N", "Y")
    assert "2" in wrong["challengeInfoText"]
    final = app.submit(code)
    assert final["transStatus"] == "Y"

    rreq = auth.rreq()
    assert (rreq["transStatus"], rreq["eci"], rreq["interactionCounter"]) == ("Y", "05", "02")
    check_notification(endpoints.wait_notification(auth.acs_trans_id), bank, Transaction.objects.get(pk=auth.acs_trans_id),
                       operation="3DS_CHALLENGE_OTP_SMS", status="SUCCESSFUL")
    assert len(acs.inbox.bodies(bank.phone)) == 1


@worker
def test_lockout_after_the_last_wrong_code_is_n_19_in_the_rreq(acs, bank, endpoints):  # noqa: F811
    auth = challenged(acs, bank)
    app = auth.app()
    app.start()
    code = acs.code_for(bank.phone)
    wrong = other_code(code)
    answers = [app.submit(wrong) for _ in range(3)]
    assert [a["challengeCompletionInd"] for a in answers] == ["N", "N", "Y"]
    assert answers[-1]["transStatus"] == "N"

    rreq = auth.rreq()
    assert (rreq["transStatus"], rreq["transStatusReason"], rreq["eci"], rreq["interactionCounter"]) == ("N", "19", "07", "03")
    assert "authenticationValue" not in rreq and "challengeCancel" not in rreq
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    assert tx.challenge.state == Challenge.FAILED
    payload = check_notification(endpoints.wait_notification(auth.acs_trans_id), bank, tx, operation="3DS_CHALLENGE_OTP_SMS", status="FAILED")
    assert payload["details"]["transStatusReason"] == "19"
    # The right code is dead too: the challenge is over and its session key wiped (SPEC
    # §3.3.6), so the SDK's CReq does not even open (Erro 302), and the result stays.
    assert app.submit(code)["errorCode"] == "302"
    assert Transaction.objects.get(pk=auth.acs_trans_id).trans_status == "N"


@worker
def test_cancel_is_challenge_cancel_01_in_the_rreq(acs, bank, endpoints):  # noqa: F811
    auth = challenged(acs, bank)
    app = auth.app()
    app.start()
    code = acs.code_for(bank.phone)
    final = app.cancel()
    assert (final["transStatus"], final["challengeCompletionInd"]) == ("N", "Y")

    rreq = auth.rreq()
    assert (rreq["transStatus"], rreq["challengeCancel"], rreq["eci"]) == ("N", "01", "07")
    assert rreq["transStatusReason"] and "authenticationValue" not in rreq
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    assert tx.challenge.state == Challenge.CANCELLED
    check_notification(endpoints.wait_notification(auth.acs_trans_id), bank, tx, operation="3DS_CHALLENGE_OTP_SMS", status="FAILED")
    # The code died with the cancel, and the session key with the challenge: Erro 302.
    assert app.submit(code)["errorCode"] == "302"
    assert Transaction.objects.get(pk=auth.acs_trans_id).trans_status == "N"


# ---------------------------------------------------------------- timeouts, through the broker


@worker
def test_no_first_creq_in_time_is_n_14_cancel_05_by_the_timeouts_task(acs, bank, endpoints):  # noqa: F811
    from apps.threeds.tasks import challenges_time_out

    auth = challenged(acs, bank)
    Challenge.objects.filter(pk=auth.acs_trans_id).update(first_creq_deadline=timezone.now() - timedelta(seconds=1))
    challenges_time_out.delay()  # through Redis to the worker's "timeouts" queue

    rreq = auth.rreq()
    assert (rreq["transStatus"], rreq["transStatusReason"], rreq["challengeCancel"], rreq["interactionCounter"]) == ("N", "14", "05", "00")
    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    assert tx.challenge.state == Challenge.TIMED_OUT
    check_notification(endpoints.wait_notification(auth.acs_trans_id), bank, tx, operation="3DS_CHALLENGE_OTP_SMS", status="FAILED")
    # A CReq arriving now finds the challenge over, and no code was ever sent.
    late = auth.app().start()
    assert (late["transStatus"], late["challengeCompletionInd"]) == ("N", "Y")
    assert acs.inbox.bodies(bank.phone) == []


@worker
def test_a_challenge_not_finished_in_time_is_n_14_cancel_04_by_the_timeouts_task(acs, bank, endpoints):  # noqa: F811
    from apps.threeds.tasks import challenges_time_out

    auth = challenged(acs, bank)
    app = auth.app()
    app.start()
    code = acs.code_for(bank.phone)
    Challenge.objects.filter(pk=auth.acs_trans_id).update(deadline=timezone.now() - timedelta(seconds=1))
    challenges_time_out.delay()

    rreq = auth.rreq()
    assert (rreq["transStatus"], rreq["transStatusReason"], rreq["challengeCancel"]) == ("N", "14", "04")
    assert Challenge.objects.get(pk=auth.acs_trans_id).state == Challenge.TIMED_OUT
    assert app.submit(code)["transStatus"] == "N"  # too late, even with the right code
    assert len(endpoints.rreqs(auth.acs_trans_id)) == 1


def _beat_env() -> dict:
    """The environment tests/conftest.py gives the worker: same test database, broker prefix
    (TEST_RUN_ID) and SMS settings."""
    return {
        "DJANGO_SETTINGS_MODULE": "issuer_portal.settings_test",
        "DATABASE_URL": _database_url_for_worker(),
        "TEST_RUN_ID": os.environ["TEST_RUN_ID"],
        "PYTHONUNBUFFERED": "1",
    }


@worker
def test_beat_and_the_worker_time_out_a_challenge_without_anyone_calling_the_task(acs, bank, endpoints, twilio, tmp_path):  # noqa: F811
    auth = challenged(acs, bank)
    Challenge.objects.filter(pk=auth.acs_trans_id).update(first_creq_deadline=timezone.now() - timedelta(seconds=1))

    log_path = tmp_path / "beat.log"
    env = {**os.environ, **_beat_env(), **twilio.env()}
    with open(log_path, "wb") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "issuer_portal", "beat", "-l", "INFO",
             "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval", "1",
             "--pidfile", str(tmp_path / "beat.pid")],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            rreq = auth.rreq(timeout=25)
        except BaseException:
            print(log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            beat.send_signal(signal.SIGTERM)
            try:
                beat.wait(timeout=15)
            except subprocess.TimeoutExpired:
                beat.kill()
                beat.wait()
    assert (rreq["transStatus"], rreq["transStatusReason"], rreq["challengeCancel"]) == ("N", "14", "05")
    assert Challenge.objects.get(pk=auth.acs_trans_id).state == Challenge.TIMED_OUT
    assert "timeouts.challenges" in log_path.read_text(errors="replace")


# ---------------------------------------------------------------- RReq delivery


@worker
def test_the_rreq_is_retried_until_the_ds_acknowledges_it_once(acs, bank, endpoints):  # noqa: F811
    endpoints.fail_rreqs(2, status=500)
    auth = challenged(acs, bank)
    app = auth.app()
    app.start()
    assert app.submit(acs.code_for(bank.phone))["transStatus"] == "Y"

    delivery = rreq_delivery(auth.acs_trans_id, timeout=30)
    time.sleep(1.5)  # longer than the worker's largest backoff: a duplicate would have been sent by now
    assert (delivery.status, delivery.tries, delivery.results_status) == (RReqDelivery.SUCCEEDED, 3, "01")
    assert [(a.number, a.status_code) for a in delivery.attempts.all()] == [(1, 500), (2, 500), (3, 200)]
    assert all(a.error_message == "HTTP 500" for a in delivery.attempts.all()[:2])
    assert [r.answered for r in endpoints.rreqs(auth.acs_trans_id)] == [500, 500, 200]
    assert len(endpoints.acknowledged(auth.acs_trans_id)) == 1
    # Every try sent the same message.
    assert len({r.body for r in endpoints.rreqs(auth.acs_trans_id)}) == 1
    assert AuditEvent.objects.filter(acs_trans_id=auth.acs_trans_id, kind="threeds.rres_received").count() == 1
    assert not AuditEvent.objects.filter(acs_trans_id=auth.acs_trans_id, kind="threeds.rreq_failed").exists()

    # The failures are visible to the issuer's systems too.
    detail = acs.api(bank.api_key).get(f"{acs.base_url}/api/v1/transactions/{auth.acs_trans_id}").json()
    assert detail["rreq"]["status"] == "succeeded" and detail["rreq"]["tries"] == 3
    assert [a["status_code"] for a in detail["rreq"]["attempts"]] == [500, 500, 200]


# ---------------------------------------------------------------- browser, over plain HTTP form posts


@worker
def test_browser_challenge_over_form_posts(acs, bank, endpoints):  # noqa: F811
    auth = challenged(acs, bank, channel="02")
    assert auth.ares["acsURL"] == f"{acs.base_url}/3ds/v2/challenge"
    browser = auth.browser(window="03", session_data="c2Vzc2lvbi0xMjM")
    page = browser.start()
    assert page.status_code == 200 and not page.is_final
    assert page.form_with("challengeDataEntry") is not None and page.form_with("pageToken")["hidden"]["acsTransID"] == auth.acs_trans_id
    assert bank.phone[-4:] in page.text and bank.phone not in page.text and bank.pan not in page.response.text
    assert "Tokyo Books" in page.text

    code = acs.code_for(bank.phone)
    page = browser.submit(other_code(code))
    assert not page.is_final and "2" in page.message
    page = browser.submit(code)
    assert page.is_final

    post = browser.post_final()
    assert post.form["threeDSSessionData"] == "c2Vzc2lvbi0xMjM"
    assert post.cres == {
        "messageType": "CRes", "messageVersion": "2.2.0", "threeDSServerTransID": auth.message["threeDSServerTransID"],
        "acsTransID": auth.acs_trans_id, "transStatus": "Y", "challengeCompletionInd": "Y",
    }
    rreq = auth.rreq()
    assert (rreq["transStatus"], rreq["eci"], rreq["interactionCounter"]) == ("Y", "05", "02")
    assert "sdkTransID" not in rreq
    assert rreq["authenticationValue"] == Transaction.objects.get(pk=auth.acs_trans_id).authentication_value
    check_notification(endpoints.wait_notification(auth.acs_trans_id), bank, Transaction.objects.get(pk=auth.acs_trans_id),
                       operation="3DS_CHALLENGE_OTP_SMS", status="SUCCESSFUL")


# ---------------------------------------------------------------- the same harness, in-process


@pytest.fixture
def acs_in_process(live_server, settings, tmp_path, endpoints):  # noqa: F811
    """The server sends its SMS to the `file` backend and runs its tasks inline (eager), even
    when a broker is configured: the harness reads the codes from the file."""
    from issuer_portal.celery import app

    settings.PUBLIC_BASE_URL = live_server.url
    settings.SMS_BACKEND, settings.SMS_FALLBACK_BACKEND = "file", ""
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield Acs(live_server.url, endpoints, FileInbox(tmp_path / "sms.jsonl"))
    app.conf.task_always_eager = previous
    assert endpoints.violations == []


def test_in_process_app_challenge_with_a_resend(acs_in_process, bank, endpoints):  # noqa: F811
    from apps.otp.models import OtpSession

    acs = acs_in_process
    auth = challenged(acs, bank)
    app = auth.app()
    app.start()
    old = acs.code_for(bank.phone)
    OtpSession.objects.update(last_sent_at=timezone.now() - timedelta(minutes=1))  # past the resend cooldown
    resent = app.resend()
    assert resent["challengeCompletionInd"] == "N" and bank.phone[-4:] in resent["challengeInfoText"]
    new = acs.code_for(bank.phone, nth=2)
    if new != old:  # the old code stopped working (a 1-in-a-million draw may repeat it)
        assert app.submit(old)["challengeCompletionInd"] == "N"
    final = app.submit(new)
    assert (final["transStatus"], final["challengeCompletionInd"]) == ("Y", "Y")

    rreq = auth.rreq()  # sent by the server's own thread, before the final CRes came back
    assert rreq["transStatus"] == "Y" and rreq["authenticationValue"] == Transaction.objects.get(pk=auth.acs_trans_id).authentication_value
    check_notification(endpoints.wait_notification(auth.acs_trans_id), bank, Transaction.objects.get(pk=auth.acs_trans_id),
                       operation="3DS_CHALLENGE_OTP_SMS", status="SUCCESSFUL")
    assert len(acs.inbox.bodies(bank.phone)) == 2
