from celery import shared_task

from apps.webhooks import services


# acks_late: a worker killed mid-try leaves the message to be redelivered; the claim in the
# service makes that redelivery harmless. Only the id travels: the payload may carry an OTP.
@shared_task(name="webhooks.deliver", bind=True, acks_late=True, ignore_result=True)
def deliver(self, delivery_id: int) -> None:
    retry_in = services.webhook_delivery_attempt(delivery_id=delivery_id, task_id=self.request.id or "")
    if retry_in is not None:
        deliver.apply_async(args=[delivery_id], countdown=retry_in)


@shared_task(name="webhooks.resume_stalled", ignore_result=True)
def resume_stalled() -> None:
    services.webhook_deliveries_resume()


@shared_task(name="webhooks.wipe_payloads", ignore_result=True)
def wipe_payloads() -> None:
    services.webhook_payloads_wipe()
