from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.threeds.models import Challenge
from tests.support.fixtures import in_process_tasks  # noqa: F401 (fixture)
from tests.threeds.builders import areq
from tests.threeds.conftest import PAN, enrolled  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def test_the_in_process_schedule_times_out_an_abandoned_challenge(client, enrolled, in_process_tasks):
    ares = client.post("/3ds/v2/areq", areq(pan=PAN, threeDSRequestorChallengeInd="04"), content_type="application/json").json()
    Challenge.objects.filter(pk=ares["acsTransID"]).update(first_creq_deadline=timezone.now() - timedelta(seconds=1))
    call_command("run_schedule", "--once")
    challenge = Challenge.objects.select_related("transaction").get(pk=ares["acsTransID"])
    assert challenge.state == Challenge.TIMED_OUT and challenge.transaction.challenge_cancel == "05"
