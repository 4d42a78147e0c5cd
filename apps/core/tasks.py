import socket

from celery import shared_task

from apps.core.models import WorkerHeartbeat


@shared_task(name="core.worker_heartbeat")
def worker_heartbeat(nonce: str) -> None:
    WorkerHeartbeat.objects.create(hostname=socket.gethostname(), nonce=nonce)
