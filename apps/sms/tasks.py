from celery import shared_task
from celery.signals import worker_init
from django.urls import reverse

from apps.delivery import engine
from apps.sms import services


@shared_task(name="sms.send", **engine.SEND_TASK_OPTIONS)  # routed to the "sms" queue
def sms_send(self, delivery_id: str) -> None:
    engine.run_task(self, services.SMS_CHANNEL, delivery_id)


@shared_task(name="sms.maintenance", ignore_result=True)
def sms_maintenance() -> dict:
    """Every few minutes (beat): wipe old bodies. Lost deliveries are the delivery sweep's."""
    return {"purged": services.sms_bodies_purge()}


@worker_init.connect
def _warm_up(**kwargs) -> None:
    """Build Django's URL resolver (~100 ms, for the status-callback URL) when the worker starts,
    before the pool forks or starts its threads, instead of in the first SMS it sends."""
    reverse("sms:twilio-status", args=["warm-up"])
