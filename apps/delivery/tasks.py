from celery import shared_task

from apps.delivery import engine


@shared_task(name="delivery.sweep", ignore_result=True)
def sweep() -> dict:
    """Every few seconds (beat, or run_schedule): wake every overdue delivery of every channel."""
    return engine.sweep()
