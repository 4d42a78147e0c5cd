import time

from celery import shared_task
from django.db import DatabaseError

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
    while (wait := services.push_delivery_send(delivery_id=delivery_id, task_id=self.request.id or "")) is not None:
        if not self.request.is_eager:
            raise self.retry(countdown=wait)
        # No broker to hold the retry (development, in-process tests): wait here.
        time.sleep(wait)


@shared_task(name="push.resume_stalled", ignore_result=True)
def push_resume_stalled() -> int:
    """Beat: deliveries whose task was lost or whose worker died are picked up again."""
    return services.push_deliveries_resume()
