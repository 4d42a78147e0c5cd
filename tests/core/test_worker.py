"""The task path is real: a task goes through the broker to a worker process and reaches the DB."""

import uuid

import pytest
from django.conf import settings

from apps.core.models import WorkerHeartbeat
from apps.core.tasks import worker_heartbeat
from tests.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_task_sent_through_the_broker_runs_in_the_worker_process(celery_worker):
    nonce = uuid.uuid4().hex
    worker_heartbeat.delay(nonce)
    beat = wait_for(lambda: WorkerHeartbeat.objects.filter(nonce=nonce).first())
    assert not settings.CELERY_TASK_ALWAYS_EAGER
    assert beat.hostname  # written by the worker, not by this process
    assert "core.worker_heartbeat[" in celery_worker.log_path.read_text()
