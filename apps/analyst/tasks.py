"""Export jobs in the background. acks_late + reject_on_worker_lost (settings) give a killed
child's task back to the broker; the sweep covers a lost node or wake-up (services)."""

from celery import shared_task

from apps.analyst import services


@shared_task(name="analyst.export_run")
def export_run(job_id: str) -> None:
    services.export_job_run(job_id)


@shared_task(name="analyst.export_sweep")
def export_sweep() -> dict:
    return services.export_jobs_sweep()
