"""Large exports complete (issue 14 item 8): above ANALYST_STREAM_MAX_ROWS the analyst confirms a
background job; its file is written under a temporary name and renamed only when complete, served
by a download view in the user's scope, every download in the access log. A worker that dies is
covered by the sweep: the job runs again, or fails with a reason — never "running" forever."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.roles import ANALYST, ISSUER_ADMIN
from apps.analyst import services
from apps.analyst.models import AccessRecord, ExportJob
from apps.audit.models import AuditEvent
from tests.analyst.conftest import client_for, export_rows, make_staff, make_tx
from tests.factories import make_superuser

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_threshold(settings, tmp_path):
    settings.ANALYST_STREAM_MAX_ROWS = 3
    settings.ANALYST_EXPORT_DIR = str(tmp_path / "exports")


@pytest.fixture
def jobs_run(django_capture_on_commit_callbacks):
    """The job's wake-up runs its task here, as it does without a broker."""
    from tests.support.fixtures import in_process_tasks  # noqa: F401

    from issuer_portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True

    def run(call):
        with django_capture_on_commit_callbacks(execute=True):
            return call()

    yield run
    app.conf.task_always_eager = previous


def download_text(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


def test_below_the_threshold_the_export_streams(analyst_client, issuer):
    make_tx(issuer), make_tx(issuer)
    response = analyst_client.get("/analyst/transactions.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert len(export_rows(download_text(response))) == 2


def test_a_cut_stream_has_no_trailer(analyst, issuer, rf):
    from apps.analyst.views import transaction_export_view

    make_tx(issuer), make_tx(issuer)
    request = rf.get("/analyst/transactions.csv")
    request.user = analyst
    stream = iter(transaction_export_view(request).streaming_content)
    received = (next(stream) + next(stream)).decode()  # the header and one row, then the connection is cut
    assert services.TRAILER_PREFIX not in received
    with pytest.raises(AssertionError, match="no trailer"):
        export_rows(received)


def test_at_the_threshold_the_analyst_confirms_a_background_job_that_completes(analyst, analyst_client, issuer, jobs_run):
    for _ in range(4):
        make_tx(issuer, pan_last4="4242")
    make_tx(issuer)
    page = analyst_client.get("/analyst/transactions.csv", {"last4": "4242"})
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert 'action="/analyst/exports/new?last4=4242"' in page.content.decode()
    assert not ExportJob.objects.exists()  # a GET creates nothing

    response = jobs_run(lambda: analyst_client.post("/analyst/exports/new?last4=4242"))
    job = ExportJob.objects.get()
    assert response.status_code == 303 and response["Location"] == f"/analyst/exports/{job.pk}/"
    job.refresh_from_db()
    assert (job.status, job.rows, job.tries, job.filters) == (ExportJob.DONE, 4, 1, {"last4": "4242"})
    assert sorted(p.name for p in Path(services.export_dir()).iterdir()) == [f"{job.pk}.csv"]  # no .part left

    job_page = analyst_client.get(f"/analyst/exports/{job.pk}/").content.decode()
    assert "Ready" in job_page and f"/analyst/exports/{job.pk}/download" in job_page
    download = analyst_client.get(f"/analyst/exports/{job.pk}/download")
    assert download.status_code == 200 and download["Content-Disposition"].startswith('attachment; filename="transactions-')
    rows = export_rows(download_text(download))
    assert len(rows) == 4 and {r["card_last4"] for r in rows} == {"4242"}

    kinds = list(AccessRecord.objects.order_by("id").values_list("kind", "export_id", "user"))
    assert kinds == [(AccessRecord.EXPORT, job.pk, analyst.pk), (AccessRecord.DOWNLOAD, job.pk, analyst.pk)]
    finished = AuditEvent.objects.get(kind=services.EXPORT_FINISHED)
    assert finished.data["rows"] == 4 and finished.data["completed"] is True


def test_invalid_filters_create_no_job(analyst_client, issuer):
    response = analyst_client.post("/analyst/exports/new?amount_min=5")
    assert response.status_code == 400 and not ExportJob.objects.exists()


def test_a_superuser_chooses_the_issuer(issuer):
    client = client_for(make_superuser())
    assert client.post("/analyst/exports/new").status_code == 400
    assert not ExportJob.objects.exists()


@pytest.fixture
def done_job(issuer, analyst, jobs_run):
    for _ in range(3):
        make_tx(issuer)
    jobs_run(lambda: services.export_job_create(issuer=issuer, user=analyst, actor="staff:a", filters=services.TransactionFilters()))
    job = ExportJob.objects.get()
    assert job.status == ExportJob.DONE
    return job


@pytest.mark.parametrize("who,status", [
    ("anonymous", 302), ("analyst", 200), ("other analyst", 404), ("issuer admin", 200), ("superuser", 200),
])
@pytest.mark.parametrize("page", ["", "download"])
def test_job_page_and_download_by_role(issuer, other_issuer, done_job, who, status, page):
    client = {
        "anonymous": Client,
        "analyst": lambda: client_for(make_staff(issuer, ANALYST, username="colleague")),
        "other analyst": lambda: client_for(make_staff(other_issuer, ANALYST)),
        "issuer admin": lambda: client_for(make_staff(issuer, ISSUER_ADMIN)),
        "superuser": lambda: client_for(make_superuser()),
    }[who]()
    response = client.get(f"/analyst/exports/{done_job.pk}/{page}")
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith("/admin/login/")
    downloads = AccessRecord.objects.filter(kind=AccessRecord.DOWNLOAD).count()
    assert downloads == (1 if page and status == 200 else 0)


@pytest.mark.parametrize("who,status", [("anonymous", 401), ("other analyst", 400), ("analyst", 303)])
def test_job_creation_by_role(issuer, other_issuer, who, status, jobs_run):
    """Another issuer's analyst can only export their own issuer: the issuer is not a choice."""
    client = {"anonymous": Client, "analyst": lambda: client_for(make_staff(issuer, ANALYST)),
              "other analyst": lambda: client_for(make_staff(other_issuer, ANALYST))}[who]()
    response = jobs_run(lambda: client.post(f"/analyst/exports/new?issuer={issuer.issuer_id}"))
    if who == "other analyst":
        assert response.status_code == 303 and ExportJob.objects.get().issuer == other_issuer
    else:
        assert response.status_code == status
        assert ExportJob.objects.filter(issuer=issuer).count() == (1 if status == 303 else 0)


def test_the_job_list_shows_the_issuers_jobs_only(issuer, other_issuer, done_job):
    assert list(client_for(make_staff(issuer, ANALYST, username="colleague")).get("/analyst/exports/").context["jobs"]) == [done_job]
    assert list(client_for(make_staff(other_issuer, ANALYST)).get("/analyst/exports/").context["jobs"]) == []


def test_an_unfinished_job_is_never_served_even_with_a_partial_file(analyst_client, issuer, analyst):
    job = ExportJob.objects.create(issuer=issuer, requested_by=analyst, actor="staff:a", status=ExportJob.RUNNING,
                                   tries=1, lease_expires_at=timezone.now() + timedelta(minutes=1))
    directory = services.export_dir()
    (directory / f"{job.pk}.1.part").write_text("created_at\n2026-")
    assert analyst_client.get(f"/analyst/exports/{job.pk}/download").status_code == 404
    page = analyst_client.get(f"/analyst/exports/{job.pk}/").content.decode()
    assert "Running" in page and "download" not in page.split("<main>")[1].lower().replace("downloaded", "")
    assert '<meta http-equiv="refresh" content="5">' in page


def test_a_done_job_whose_file_is_gone_is_not_found(analyst_client, done_job):
    services.export_file_path(done_job).unlink()
    assert analyst_client.get(f"/analyst/exports/{done_job.pk}/download").status_code == 404


def _stale(issuer, analyst, tries):
    return ExportJob.objects.create(issuer=issuer, requested_by=analyst, actor="staff:a", status=ExportJob.RUNNING,
                                    tries=tries, started_at=timezone.now() - timedelta(minutes=5),
                                    lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_job_whose_worker_died_runs_again_from_the_start(issuer, analyst, jobs_run):
    make_tx(issuer), make_tx(issuer)
    job = _stale(issuer, analyst, tries=1)
    (services.export_dir() / f"{job.pk}.1.part").write_text("the dead worker's half file")
    assert jobs_run(services.export_jobs_sweep) == {"woken": 1, "failed": 0, "removed": 0}
    job.refresh_from_db()
    assert (job.status, job.rows, job.tries) == (ExportJob.DONE, 2, 2)
    assert [p.name for p in services.export_dir().iterdir()] == [f"{job.pk}.csv"]
    assert len(export_rows(services.export_file_path(job).read_text())) == 2


def test_a_job_that_keeps_dying_fails_with_a_reason(issuer, analyst, analyst_client, jobs_run):
    job = _stale(issuer, analyst, tries=3)
    assert jobs_run(services.export_jobs_sweep) == {"woken": 0, "failed": 1, "removed": 0}
    job.refresh_from_db()
    assert job.status == ExportJob.FAILED and "stopped 3 times" in job.error
    assert "stopped 3 times" in analyst_client.get(f"/analyst/exports/{job.pk}/").content.decode()


def test_a_live_job_is_left_alone_and_a_second_claim_does_nothing(issuer, analyst, jobs_run):
    job = ExportJob.objects.create(issuer=issuer, requested_by=analyst, actor="staff:a", status=ExportJob.RUNNING,
                                   tries=1, lease_expires_at=timezone.now() + timedelta(minutes=1))
    assert jobs_run(services.export_jobs_sweep) == {"woken": 0, "failed": 0, "removed": 0}
    services.export_job_run(job.pk)  # a redelivered task while the first worker still writes
    job.refresh_from_db()
    assert (job.status, job.tries) == (ExportJob.RUNNING, 1)


def test_a_lost_wake_up_is_sent_again(issuer, analyst, jobs_run):
    make_tx(issuer)
    job = ExportJob.objects.create(issuer=issuer, requested_by=analyst, actor="staff:a")
    ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert jobs_run(services.export_jobs_sweep) == {"woken": 1, "failed": 0, "removed": 0}
    job.refresh_from_db()
    assert (job.status, job.rows) == (ExportJob.DONE, 1)


def test_a_file_past_its_retention_is_removed_and_the_page_says_so(analyst_client, done_job, jobs_run):
    ExportJob.objects.filter(pk=done_job.pk).update(finished_at=timezone.now() - services.EXPORT_RETENTION - timedelta(hours=1))
    assert jobs_run(services.export_jobs_sweep) == {"woken": 0, "failed": 0, "removed": 1}
    assert not services.export_file_path(done_job).exists()
    assert analyst_client.get(f"/analyst/exports/{done_job.pk}/download").status_code == 404
    assert "removed after its retention period" in analyst_client.get(f"/analyst/exports/{done_job.pk}/").content.decode()
