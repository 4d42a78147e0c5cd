import time

from celery import shared_task
from celery.signals import worker_init
from django.db import DatabaseError
from django.urls import reverse

from apps.sms import services


@shared_task(
    name="sms.send",  # "sms.*" routes to the sms queue
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # tries are bounded per provider by the service, not by Celery
    # The database went away: keep the delivery, come back later (the claim makes it safe).
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    ignore_result=True,
)
def sms_send(self, delivery_id: str) -> None:
    while (wait := services.sms_delivery_send(delivery_id=delivery_id, task_id=self.request.id or "")) is not None:
        if wait <= 0:
            continue  # straight on to the next provider
        if not self.request.is_eager:
            raise self.retry(countdown=wait)
        # No broker to hold the retry (development, in-process tests): wait here.
        time.sleep(wait)


@shared_task(name="sms.maintenance", ignore_result=True)
def sms_maintenance() -> dict:
    """Every few minutes (beat): wipe old bodies, and resume deliveries whose task was lost."""
    return {"purged": services.sms_bodies_purge(), "resumed": services.sms_deliveries_resume()}


@worker_init.connect
def _warm_up(**kwargs) -> None:
    """Build Django's URL resolver (~100 ms, for the status-callback URL) when the worker starts,
    before the pool forks or starts its threads, instead of in the first SMS it sends."""
    reverse("sms:twilio-status", args=["warm-up"])
