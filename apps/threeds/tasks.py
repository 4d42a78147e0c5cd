from celery import shared_task
from django.db import DatabaseError

from apps.delivery import engine
from apps.threeds import rreq

# ---- RReq to the DS: a channel of the delivery engine, on its own queue ("rreq.*").


# acks_late: a worker killed mid-try leaves the message to be redelivered; the engine's claim
# makes that redelivery harmless. Only the delivery id travels.
@shared_task(
    name="rreq.send",
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
def rreq_send(self, delivery_id) -> None:
    engine.run_task(self, rreq.RREQ_CHANNEL, delivery_id)


# ---- Challenge timeouts (SPEC §3.4): enforced by beat, not only when the cardholder comes back.


@shared_task(name="timeouts.challenges", ignore_result=True)
def challenges_time_out() -> int:
    from apps.threeds.challenge import challenges_time_out as sweep

    return sweep()
