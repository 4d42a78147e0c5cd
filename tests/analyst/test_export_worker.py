"""A large export end to end with the real Celery worker on PostgreSQL and Redis: the job is
published on commit, the worker writes the file (temporary name, then renamed), the download has
every row and the trailer that counts them; a job whose worker died is run again by the sweep."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.roles import ANALYST
from apps.analyst import services
from apps.analyst.models import ExportJob
from apps.analyst.selectors import Scope, TransactionFilters, transaction_list
from tests.analyst.conftest import client_for, export_rows, make_staff, make_tx
from tests.conftest import wait_for
from tests.support.fixtures import postgres_only  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

ROWS = 1200


@pytest.fixture
def many(issuer):
    for i in range(ROWS):
        make_tx(issuer, pan_last4="4242" if i % 3 else "1111")
    yield
    for path in services.export_dir().glob("*"):
        if path.name.split(".")[0] in {str(pk) for pk in ExportJob.objects.values_list("pk", flat=True)}:
            path.unlink()


def test_a_large_export_completes_in_the_worker(celery_worker, settings, issuer, many):
    settings.ANALYST_STREAM_MAX_ROWS = 100
    client = client_for(make_staff(issuer, ANALYST))
    assert "Prepare the export" in client.get("/analyst/transactions.csv", {"last4": "4242"}).content.decode()
    response = client.post("/analyst/exports/new?last4=4242")
    job = ExportJob.objects.get()
    assert response.status_code == 303
    wait_for(lambda: ExportJob.objects.filter(pk=job.pk, status__in=[ExportJob.DONE, ExportJob.FAILED]).exists(), timeout=60)
    job.refresh_from_db()
    expected = transaction_list(scope=Scope(issuer), filters=TransactionFilters(last4="4242")).count()
    assert (job.status, job.rows, job.error) == (ExportJob.DONE, expected, "")
    download = client.get(f"/analyst/exports/{job.pk}/download")
    rows = export_rows(b"".join(download.streaming_content).decode())
    assert len(rows) == expected == 800 and {r["card_last4"] for r in rows} == {"4242"}
    assert not list(services.export_dir().glob(f"{job.pk}.*.part"))


def test_the_sweep_reruns_a_job_whose_worker_died(celery_worker, issuer, many):
    analyst = make_staff(issuer, ANALYST)
    job = ExportJob.objects.create(issuer=issuer, requested_by=analyst, actor="staff:a", status=ExportJob.RUNNING, tries=1,
                                   started_at=timezone.now() - timedelta(minutes=5), lease_expires_at=timezone.now() - timedelta(seconds=1))
    (services.export_dir() / f"{job.pk}.1.part").write_text("created_at\n2026-")  # what the dead worker left
    assert client_for(analyst).get(f"/analyst/exports/{job.pk}/download").status_code == 404
    assert services.export_jobs_sweep() == {"woken": 1, "failed": 0, "removed": 0}
    wait_for(lambda: ExportJob.objects.filter(pk=job.pk, status=ExportJob.DONE).exists(), timeout=60)
    job.refresh_from_db()
    assert (job.rows, job.tries) == (ROWS, 2)
    assert len(export_rows(services.export_file_path(job).read_text())) == ROWS
