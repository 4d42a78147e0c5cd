"""Timeouts are enforced by scheduled work, not only when the cardholder comes back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.threeds.challenge import challenge_begin, challenges_time_out
from apps.threeds.models import Challenge, Transaction
from tests.threeds.builders import areq
from tests.threeds.conftest import PAN

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenged(client, enrolled, sms_file):
    ares = client.post("/3ds/v2/areq", areq(pan=PAN, threeDSRequestorChallengeInd="04"), content_type="application/json").json()
    return ares["acsTransID"]


def test_no_first_creq_in_30_seconds_is_n_14_cancel_05(challenged):
    assert challenges_time_out(now=timezone.now() + timedelta(seconds=29)) == 0
    assert challenges_time_out(now=timezone.now() + timedelta(seconds=31)) == 1
    tx = Transaction.objects.get(acs_trans_id=challenged)
    assert (tx.trans_status, tx.trans_status_reason, tx.challenge_cancel) == ("N", "14", "05")
    assert tx.challenge.state == Challenge.TIMED_OUT


def test_a_challenge_not_finished_in_600_seconds_is_n_14_cancel_04(challenged, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        challenge_begin(acs_trans_id=challenged)
    assert challenges_time_out(now=timezone.now() + timedelta(seconds=599)) == 0
    assert challenges_time_out(now=timezone.now() + timedelta(seconds=601)) == 1
    tx = Transaction.objects.get(acs_trans_id=challenged)
    assert (tx.trans_status, tx.trans_status_reason, tx.challenge_cancel) == ("N", "14", "04")


def test_a_late_first_creq_finds_the_challenge_over(challenged):
    Challenge.objects.filter(pk=challenged).update(first_creq_deadline=timezone.now() - timedelta(seconds=1))
    challenge, step = challenge_begin(acs_trans_id=challenged)
    assert step.outcome == "finished" and challenge.transaction.challenge_cancel == "05"


def test_a_finished_challenge_is_never_timed_out_again(challenged):
    challenges_time_out(now=timezone.now() + timedelta(seconds=31))
    assert challenges_time_out(now=timezone.now() + timedelta(seconds=700)) == 0
