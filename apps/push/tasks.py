from celery import shared_task
from django.db import DatabaseError

from apps.delivery import engine
from apps.push import services


@shared_task(
    name="push.send",  # "push.*" routes to the push queue
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # tries are bounded by the delivery's max_tries, not by Celery
    # The database went away: keep the delivery, come back later (the claim makes it safe).
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    ignore_result=True,
)
def push_send(self, delivery_id: str) -> None:
    engine.run_task(self, services.PUSH_CHANNEL, delivery_id)
