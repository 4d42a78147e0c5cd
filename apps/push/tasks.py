from celery import shared_task

from apps.delivery import engine
from apps.push import services


@shared_task(name="push.send", **engine.SEND_TASK_OPTIONS)  # routed to the "push" queue
def push_send(self, delivery_id: str) -> None:
    engine.run_task(self, services.PUSH_CHANNEL, delivery_id)
