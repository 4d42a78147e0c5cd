from celery import shared_task
from django.db import DatabaseError

from apps.delivery import engine
from apps.webhooks import services


# acks_late: a worker killed mid-try leaves the message to be redelivered; the engine's claim
# makes that redelivery harmless. Only the id travels: the payload may carry an OTP.
@shared_task(
    name="webhooks.deliver",  # "webhooks.*" routes to the webhooks queue
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # tries are bounded by the delivery's max_tries, not by Celery
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    ignore_result=True,
)
def deliver(self, delivery_id) -> None:
    engine.run_task(self, services.WEBHOOK_CHANNEL, delivery_id)


@shared_task(name="webhooks.wipe_payloads", ignore_result=True)
def wipe_payloads() -> None:
    services.webhook_payloads_wipe()
