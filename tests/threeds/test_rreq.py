"""RReq to the DS after every challenge (SPEC §3.6, §5.2): its contents per outcome, the RRes
that acknowledges it, retries through a failing DS, and never a second send after success."""

import json
import socket
import time
import uuid
from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.cards.models import Card
from apps.delivery import engine
from apps.threeds import rreq
from apps.threeds.models import Challenge, RReqDelivery, Transaction
from apps.threeds.outbound import transaction_finished
from apps.threeds.results import authentication_value, eci_for
from apps.threeds.tasks import rreq_send
from tests.conftest import wait_for
from tests.factories import CardholderFactory, CardProductFactory, IssuerFactory, make_card
from tests.support.delivery import sweep_until_settled
from tests.threeds.ds_server import BAD_JSON, ERRO, HANG, RESULTS_02, WRONG_IDS, ds_server  # noqa: F401  (fixture)

PAN = "4111111111111111"
MC_PAN = "5555555555554444"
CB_PAN = "4000002500001001"


@pytest.fixture
def eager_tasks():
    """Tasks run in this process even when a broker is configured; a task's error fails the test."""
    from issuer_portal.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def fast_retries(settings):
    settings.OUTBOUND_BACKOFF_BASE_SECONDS = 0.01
    settings.OUTBOUND_BACKOFF_MAX_SECONDS = 0.05
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 0.5
    settings.OUTBOUND_MAX_TRIES = 6


def finished_challenge(
    card: Card,
    *,
    ds_url: str,
    trans_status: str,
    reason: str = "",
    cancel: str = "",
    method: str = Challenge.SMS_OTP,
    channel: str = "02",
    version: str = "2.2.0",
    interaction_counter: int = 1,
    pan: str = PAN,
) -> Transaction:
    """A challenged transaction whose result has just been recorded, as the challenge flow leaves it
    (not yet committed: the caller runs transaction_finished)."""
    now = timezone.now()
    tx = Transaction(
        issuer=card.issuer,
        card=card,
        three_ds_server_trans_id=uuid.uuid4(),
        ds_trans_id=uuid.uuid4(),
        sdk_trans_id=uuid.uuid4() if channel == "01" else None,
        message_version=version,
        device_channel=channel,
        message_category="01",
        pan_last4=card.last4,
        pan_fingerprint=card.pan_fingerprint,
        network=card.network,
        co_badge=card.co_badge,
        purchase_amount=1500,
        purchase_currency="392",
        purchase_exponent=0,
        merchant_name="Tokyo Books",
        three_ds_requestor_challenge_ind="04",
        ds_url=ds_url,
        risk_score=60,
        risk_rules=[{"rule": "base", "weight": 60}],
        ares_trans_status="C",
        authentication_type="03" if method == Challenge.OOB else "02",
        trans_status=trans_status,
        trans_status_reason=reason,
        challenge_cancel=cancel,
        interaction_counter=interaction_counter,
        finished_at=now,
    )
    tx.eci = eci_for(network=tx.network, co_badge=tx.co_badge, trans_status=trans_status)
    if trans_status in ("Y", "A"):
        tx.authentication_value, tx.authentication_value_key_id = authentication_value(
            issuer_id=card.issuer.issuer_id, pan=pan, ds_trans_id=tx.ds_trans_id, acs_trans_id=tx.acs_trans_id,
            purchase_amount=tx.purchase_amount, purchase_currency=tx.purchase_currency, trans_status=trans_status,
        )
    tx.save(force_insert=True)
    state = {"Y": Challenge.SUCCEEDED, "A": Challenge.SUCCEEDED}.get(trans_status, Challenge.FAILED)
    if cancel == "01":
        state = Challenge.CANCELLED
    elif reason == "14":
        state = Challenge.TIMED_OUT
    Challenge.objects.create(
        transaction=tx, method=method, state=state, first_creq_deadline=now, deadline=now, finished_at=now,
    )
    return tx


def finish(tx: Transaction, capture) -> RReqDelivery:
    """Record the end as the challenge flow does; the RReq goes out when that commits."""
    with capture(execute=True):
        with transaction.atomic():
            transaction_finished(tx)
    return RReqDelivery.objects.get(transaction=tx)




# ---------------------------------------------------------------- contents per outcome


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
class TestContents:
    def test_y_after_an_otp_challenge_carries_eci_and_the_authentication_value(self, card, ds_server, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y", interaction_counter=2)

        delivery = finish(tx, django_capture_on_commit_callbacks)

        [received] = ds_server.rreqs()
        assert received.path == "/ds/rreq" and received.headers["Content-Type"].startswith("application/json")
        assert received.message == {
            "messageType": "RReq",
            "messageVersion": "2.2.0",
            "threeDSServerTransID": str(tx.three_ds_server_trans_id),
            "dsTransID": str(tx.ds_trans_id),
            "acsTransID": str(tx.acs_trans_id),
            "messageCategory": "01",
            "transStatus": "Y",
            "interactionCounter": "02",
            "eci": "05",
            "authenticationValue": tx.authentication_value,
            "authenticationType": "02",
            "authenticationMethod": "02",
        }
        assert ds_server.violations == []
        delivery.refresh_from_db()
        assert (delivery.status, delivery.tries, delivery.results_status) == (RReqDelivery.SUCCEEDED, 1, "01")
        [attempt] = delivery.attempts.all()
        assert (attempt.status_code, attempt.results_status, attempt.error_message) == (200, "01", "")
        event = AuditEvent.objects.get(acs_trans_id=tx.acs_trans_id, kind="threeds.rres_received")
        assert event.data["resultsStatus"] == "01" and event.data["tries"] == 1

    def test_too_many_wrong_codes_is_n_19_without_an_authentication_value(self, card, ds_server, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="N", reason="19", interaction_counter=3)

        finish(tx, django_capture_on_commit_callbacks)

        message = ds_server.rreqs()[0].message
        assert (message["transStatus"], message["transStatusReason"], message["eci"]) == ("N", "19", "07")
        assert message["interactionCounter"] == "03"
        assert "authenticationValue" not in message and "challengeCancel" not in message
        assert ds_server.violations == []

    def test_a_cardholder_cancel_carries_challenge_cancel_01(self, card, ds_server, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="N", reason="01", cancel="01", interaction_counter=0)

        finish(tx, django_capture_on_commit_callbacks)

        message = ds_server.rreqs()[0].message
        assert (message["transStatus"], message["challengeCancel"], message["interactionCounter"]) == ("N", "01", "00")
        assert ds_server.violations == []

    @pytest.mark.parametrize("cancel", ["05", "04"], ids=["no-first-creq", "challenge-too-long"])
    def test_a_timeout_is_n_14_with_its_challenge_cancel(self, card, ds_server, django_capture_on_commit_callbacks, cancel):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="N", reason="14", cancel=cancel, interaction_counter=0)

        finish(tx, django_capture_on_commit_callbacks)

        message = ds_server.rreqs()[0].message
        assert (message["transStatus"], message["transStatusReason"], message["challengeCancel"]) == ("N", "14", cancel)
        assert "authenticationValue" not in message
        assert ds_server.violations == []

    def test_the_app_channel_carries_the_sdk_id_and_rendering_type_of_an_oob_challenge(self, card, ds_server, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y", method=Challenge.OOB, channel="01")

        finish(tx, django_capture_on_commit_callbacks)

        message = ds_server.rreqs()[0].message
        assert message["sdkTransID"] == str(tx.sdk_trans_id)
        assert (message["authenticationType"], message["authenticationMethod"]) == ("03", "07")
        assert message["acsRenderingType"] == {"acsInterface": "01", "acsUiTemplate": "04"}
        assert ds_server.violations == []

    def test_version_2_1_0_has_no_2_2_0_elements(self, card, ds_server, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y", channel="01", version="2.1.0")

        finish(tx, django_capture_on_commit_callbacks)

        message = ds_server.rreqs()[0].message
        assert message["messageVersion"] == "2.1.0"
        assert "authenticationMethod" not in message and "acsRenderingType" not in message
        assert ds_server.violations == []

    def test_mastercard_eci(self, cardholder, ds_server, django_capture_on_commit_callbacks):
        card = make_card(cardholder=cardholder, pan=MC_PAN)
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y", pan=MC_PAN)

        finish(tx, django_capture_on_commit_callbacks)

        assert ds_server.rreqs()[0].message["eci"] == "02"

    def test_cartes_bancaires_carries_cb_avalgo_and_cb_score(self, cardholder, ds_server, django_capture_on_commit_callbacks):
        product = CardProductFactory(issuer=cardholder.issuer, network="cartes_bancaires", co_badge="visa")
        card = make_card(cardholder=cardholder, pan=CB_PAN, product=product)
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y", pan=CB_PAN)

        finish(tx, django_capture_on_commit_callbacks)

        message = ds_server.rreqs()[0].message
        assert message["eci"] == "05"  # the co-badge's table
        extensions = {e["name"]: e["data"] for e in message["messageExtension"]}
        assert extensions == {"CB-AVALGO": {"avalgo": "0"}, "CB-SCORE": {"score": 60}}  # CB-EXEMPTION is an ARes element
        assert ds_server.violations == []

    def test_it_carries_no_pan(self, card, ds_server, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")

        delivery = finish(tx, django_capture_on_commit_callbacks)

        assert PAN not in ds_server.rreqs()[0].body.decode()
        assert PAN not in json.dumps(RReqDelivery.objects.filter(pk=delivery.pk).values().get(), default=str)


# ---------------------------------------------------------------- once, and only once


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks", "fast_retries")
class TestDelivery:
    def test_it_is_retried_through_a_failing_ds_until_it_recovers(self, card, ds_server, django_capture_on_commit_callbacks):
        ds_server.hang_seconds = settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + 0.5
        ds_server.answer(500, BAD_JSON, RESULTS_02, ERRO, HANG)
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")

        delivery = finish(tx, django_capture_on_commit_callbacks)
        sweep_until_settled("rreq")  # the retries, as the sweep makes them in process

        delivery.refresh_from_db()
        assert (delivery.status, delivery.tries) == (RReqDelivery.SUCCEEDED, 6)
        tries = [(a.status_code, a.results_status, a.error_class) for a in delivery.attempts.all()]
        assert tries == [
            (500, "", ""), (200, "", "InvalidJSON"), (200, "02", "InvalidRRes"), (200, "", "InvalidRRes"),
            (None, "", "ReadTimeout"), (200, "01", ""),
        ]
        assert "Erro 404" in delivery.attempts.get(number=4).error_message
        assert len(ds_server.acknowledged(tx.acs_trans_id)) == 1
        assert len({r.body for r in ds_server.rreqs()}) == 1  # every try sends the same RReq
        assert list(AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id, kind__startswith="threeds.rre").values_list("kind", flat=True)) == [
            "threeds.rres_received"
        ]

    def test_an_rres_for_another_transaction_is_not_an_acknowledgement(self, card, ds_server, django_capture_on_commit_callbacks):
        ds_server.answer(WRONG_IDS)
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")

        delivery = finish(tx, django_capture_on_commit_callbacks)
        sweep_until_settled("rreq")  # the retries, as the sweep makes them in process

        assert [a.error_message for a in delivery.attempts.all()] == ["RRes acsTransID does not echo the RReq", ""]

    def test_it_fails_visibly_after_the_maximum_of_tries(self, card, ds_server, django_capture_on_commit_callbacks, settings):
        settings.OUTBOUND_MAX_TRIES = 3
        ds_server.default = 503
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="N", reason="19")

        delivery = finish(tx, django_capture_on_commit_callbacks)
        sweep_until_settled("rreq")  # the retries, as the sweep makes them in process

        delivery.refresh_from_db()
        assert (delivery.status, delivery.tries, delivery.last_error) == (RReqDelivery.FAILED, 3, "HTTP 503")
        assert len(ds_server.rreqs()) == 3
        event = AuditEvent.objects.get(acs_trans_id=tx.acs_trans_id, kind="threeds.rreq_failed")
        assert event.data["tries"] == 3 and event.data["status_code"] == 503

    def test_a_redelivered_task_never_sends_again_after_success(self, card, ds_server, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")
        delivery = finish(tx, django_capture_on_commit_callbacks)

        rreq_send.apply(args=[delivery.pk])
        rreq_send.apply(args=[delivery.pk])
        assert rreq.rreq_attempt(delivery_id=delivery.pk) is None

        assert len(ds_server.rreqs()) == 1
        assert delivery.attempts.count() == 1

    def test_a_second_result_for_the_same_transaction_makes_no_second_rreq(self, card, ds_server, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")
        first = finish(tx, django_capture_on_commit_callbacks)

        with django_capture_on_commit_callbacks(execute=True):
            second = rreq.rreq_enqueue(tx)

        assert second.pk == first.pk and RReqDelivery.objects.filter(transaction=tx).count() == 1
        assert len(ds_server.rreqs()) == 1

    def test_a_lost_task_is_sent_by_the_delivery_sweep(self, card, ds_server):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")
        delivery = rreq.rreq_enqueue(tx)  # never committed here: its task is never published
        assert engine.sweep(names=("rreq",)) == {"rreq": 0}  # not overdue yet

        RReqDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
        assert engine.sweep(names=("rreq",)) == {"rreq": 1}

        delivery.refresh_from_db()
        assert delivery.status == RReqDelivery.SUCCEEDED and len(ds_server.acknowledged(tx.acs_trans_id)) == 1

    def test_a_claim_whose_worker_died_is_taken_over_and_a_lost_last_try_fails(self, card, ds_server, settings):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")
        delivery = rreq.rreq_enqueue(tx)
        lapsed = timezone.now() - timedelta(seconds=5)
        RReqDelivery.objects.filter(pk=delivery.pk).update(tries=1, next_attempt_at=lapsed, lease_expires_at=lapsed)
        assert engine.sweep(names=("rreq",)) == {"rreq": 1}
        delivery.refresh_from_db()
        assert (delivery.status, delivery.tries) == (RReqDelivery.SUCCEEDED, 2)

        other = rreq.rreq_enqueue(finished_challenge(card, ds_url=ds_server.url, trans_status="Y"))
        RReqDelivery.objects.filter(pk=other.pk).update(tries=other.max_tries, next_attempt_at=lapsed, lease_expires_at=lapsed)
        assert engine.sweep(names=("rreq",)) == {"rreq": 1}
        other.refresh_from_db()
        assert other.status == RReqDelivery.FAILED
        assert AuditEvent.objects.filter(acs_trans_id=other.transaction_id, kind="threeds.rreq_failed").exists()

    def test_a_claimed_try_in_progress_is_not_sent_twice(self, card, ds_server):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")
        delivery = rreq.rreq_enqueue(tx)
        RReqDelivery.objects.filter(pk=delivery.pk).update(tries=1, lease_expires_at=timezone.now() + timedelta(minutes=1))

        # Not sent; the caller is told to look again when the lease lapses (its worker may be gone).
        assert 55 <= rreq.rreq_attempt(delivery_id=delivery.pk) <= 61
        assert ds_server.rreqs() == []

    def test_staff_can_send_a_failed_rreq_again(self, card, ds_server, django_capture_on_commit_callbacks, settings):
        settings.OUTBOUND_MAX_TRIES = 2
        ds_server.answer(500, 500)
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")
        delivery = finish(tx, django_capture_on_commit_callbacks)
        sweep_until_settled("rreq")
        delivery.refresh_from_db()
        assert delivery.status == RReqDelivery.FAILED

        with django_capture_on_commit_callbacks(execute=True):
            rreq.rreq_retry(delivery=delivery, actor="staff:ops")

        delivery.refresh_from_db()
        assert (delivery.status, delivery.tries, delivery.max_tries) == (RReqDelivery.SUCCEEDED, 3, 4)
        kinds = list(AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id).order_by("id").values_list("kind", flat=True))
        assert kinds[-3:] == ["threeds.rreq_failed", "threeds.rreq_retried", "threeds.rres_received"]

    def test_without_a_ds_url_it_fails_at_once_and_says_so(self, card, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url="", trans_status="Y")

        delivery = finish(tx, django_capture_on_commit_callbacks)

        delivery.refresh_from_db()
        assert (delivery.status, delivery.tries) == (RReqDelivery.FAILED, 0)
        assert AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id, kind="threeds.rreq_failed").exists()

    def test_a_frictionless_result_sends_no_rreq(self, card, ds_server, django_capture_on_commit_callbacks):
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")
        Transaction.objects.filter(pk=tx.pk).update(ares_trans_status="Y")
        tx.refresh_from_db()

        with django_capture_on_commit_callbacks(execute=True):
            transaction_finished(tx)

        assert not RReqDelivery.objects.filter(transaction=tx).exists() and ds_server.rreqs() == []


# ---------------------------------------------------------------- without a broker: no sleeping


@pytest.fixture
def refusing_url():
    """A local port nothing listens on: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ds/rreq"


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_tasks")
def test_in_process_a_refused_rreq_makes_one_try_and_leaves_the_retry_to_the_sweep(
    card, refusing_url, django_capture_on_commit_callbacks, settings
):
    # The production backoff: the eager task used to sleep through it in the committing thread.
    settings.OUTBOUND_BACKOFF_BASE_SECONDS, settings.OUTBOUND_BACKOFF_MAX_SECONDS = 2, 300
    settings.OUTBOUND_MAX_TRIES = 3
    tx = finished_challenge(card, ds_url=refusing_url, trans_status="Y")

    delivery = finish(tx, django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.tries, delivery.lease_expires_at) == (RReqDelivery.PENDING, 1, None)
    assert delivery.next_attempt_at > timezone.now()  # due after its backoff, not slept through
    assert [a.error_class for a in delivery.attempts.all()] == ["ConnectionError"]
    assert engine.sweep(names=("rreq",)) == {"rreq": 0}  # not due yet

    # Once due, the sweep makes the next try (again one, with the next backoff).
    RReqDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=1))
    assert engine.sweep(names=("rreq",)) == {"rreq": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.tries) == (RReqDelivery.PENDING, 2)
    assert delivery.next_attempt_at > timezone.now()


# ---------------------------------------------------------------- through the broker and a real worker


@pytest.fixture
def worker_timing(request, settings):
    """The OUTBOUND_* values the worker runs with (tests/conftest.py gives it the fake Twilio's)."""
    for name, value in request.getfixturevalue("twilio_server").django_settings().items():
        if name.startswith("OUTBOUND_"):
            setattr(settings, name, value)


@pytest.fixture
def published():
    messages = []

    def record(sender=None, body=None, headers=None, routing_key=None, **kwargs):
        messages.append({"task": sender, "body": body, "routing_key": routing_key})

    before_task_publish.connect(record, weak=False)
    yield messages
    before_task_publish.disconnect(record)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_one_acknowledged_rreq_after_two_failures(celery_worker, worker_timing, ds_server, published):
    assert settings.OUTBOUND_MAX_TRIES >= 3
    ds_server.answer(500, 500)
    issuer = IssuerFactory()
    card = make_card(cardholder=CardholderFactory(issuer=issuer), pan=PAN)
    with transaction.atomic():  # the task is published when this commits
        tx = finished_challenge(card, ds_url=ds_server.url, trans_status="Y")
        transaction_finished(tx)

    budget = settings.OUTBOUND_MAX_TRIES * (2 * settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + settings.OUTBOUND_BACKOFF_MAX_SECONDS) + 20
    delivery = wait_for(
        lambda: RReqDelivery.objects.filter(transaction=tx, status__in=RReqDelivery.TERMINAL).first(), timeout=budget
    )
    time.sleep(max(1.0, 2 * settings.OUTBOUND_BACKOFF_MAX_SECONDS))  # time for a duplicate to (wrongly) send

    assert delivery.status == RReqDelivery.SUCCEEDED
    assert [a.status_code for a in delivery.attempts.all()] == [500, 500, 200]
    assert all(a.task_id for a in delivery.attempts.all())
    assert [r.answered for r in ds_server.rreqs(tx.acs_trans_id)] == [500, 500, 200]
    assert len(ds_server.acknowledged(tx.acs_trans_id)) == 1
    assert ds_server.violations == []
    assert AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id, kind="threeds.rres_received").count() == 1
    sent = [m for m in published if m["task"] == "rreq.send"]
    assert sent and all(m["routing_key"] == "rreq" for m in sent)  # its own queue
    assert all(list(m["body"][0]) == [delivery.pk] and m["body"][1] == {} for m in sent)  # only the id travels
    assert PAN not in celery_worker.log_path.read_text()
