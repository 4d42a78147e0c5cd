"""The per-device push limit holds under concurrency (PostgreSQL, real parallel connections)."""

import uuid

import pytest
from django.db import connection, transaction

from apps.push.models import PushDelivery
from apps.push.services import push_authn_request
from tests.concurrency import run_parallel
from tests.push.conftest import make_device

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture(autouse=True)
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL")


def test_parallel_pushes_to_one_device_pass_the_limit_exactly(issuer, push_file, settings):
    settings.PUSH_MAX_PER_DEVICE_PER_MINUTE = 3
    device = make_device(issuer=issuer)

    def request(i):
        with transaction.atomic():
            return push_authn_request(device=device, acs_trans_id=uuid.uuid4()).status

    results = run_parallel(12, request)
    assert sorted(results) == ["pending"] * 3 + ["refused"] * 9
    assert PushDelivery.objects.filter(device=device).exclude(status="refused").count() == 3
    assert len(push_file.lines()) == 3
