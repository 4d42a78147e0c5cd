from celery import shared_task

from apps.threeds import rreq

# ---- RReq to the DS. Named "webhooks.*" so they run on the queue of outbound HTTP calls.


# acks_late: a worker killed mid-try leaves the message to be redelivered; the claim in
# apps.threeds.rreq makes that redelivery harmless. Only the delivery id travels.
@shared_task(name="webhooks.rreq_send", bind=True, acks_late=True, ignore_result=True)
def rreq_send(self, delivery_id: int) -> None:
    retry_in = rreq.rreq_attempt(delivery_id=delivery_id, task_id=self.request.id or "")
    if retry_in is not None:
        rreq_send.apply_async(args=[delivery_id], countdown=retry_in)


@shared_task(name="webhooks.rreq_resume_stalled", ignore_result=True)
def rreq_resume_stalled() -> None:
    rreq.rreq_resume_stalled()


# ---- Challenge timeouts (SPEC §3.4): enforced by beat, not only when the cardholder comes back.


@shared_task(name="timeouts.challenges", ignore_result=True)
def challenges_time_out() -> int:
    from apps.threeds.challenge import challenges_time_out as sweep

    return sweep()
