from celery import shared_task

from apps.delivery import engine
from apps.webhooks import services


# Only the id travels: the payload may carry an OTP.
@shared_task(name="webhooks.deliver", **engine.SEND_TASK_OPTIONS)  # routed to the "webhooks" queue
def deliver(self, delivery_id) -> None:
    engine.run_task(self, services.WEBHOOK_CHANNEL, delivery_id)


@shared_task(name="webhooks.wipe_payloads", ignore_result=True)
def wipe_payloads() -> None:
    services.webhook_payloads_wipe()
