"""What the analyst workspace writes: an analyst's label and note on a transaction (their only
change to the data, audited), the access log of views and exports, and the export jobs that write
large CSV files in the background."""

from __future__ import annotations

import csv
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.analyst.models import AccessRecord, ExportJob, TransactionLabel
from apps.analyst.selectors import EXPORT_HEADER, Scope, TransactionFilters, transaction_export_rows
from apps.audit.services import audit_record

logger = logging.getLogger(__name__)

EXPORT_STARTED = "analyst.export_started"
EXPORT_FINISHED = "analyst.export_finished"
EXPIRED = "The file was removed after its retention period; start the export again."
LABEL_SET = "analyst.label_set"
LABEL_REMOVED = "analyst.label_removed"

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The last line of every export, streamed or written by a job: a file without it was cut short.
TRAILER_PREFIX = "# end of export: "
# A running job's worker renews its lease every LEASE_RENEW_ROWS rows (1.5–3 s at the measured
# 7,000–14,000 rows/s); a lapsed lease means the worker died (killed, lost its node), and the sweep
# (every 30 s) re-runs the job or marks it failed. A task redelivered after a killed child waits
# for the lease too: it cannot tell a dead claimant from a live one.
EXPORT_LEASE = timedelta(seconds=60)
LEASE_RENEW_ROWS = 20_000
# A pending job not started after this long lost its wake-up (broker down): the sweep sends it again.
PENDING_GRACE = timedelta(seconds=60)
# A finished export's file is removed after this long (the job and its access records stay).
EXPORT_RETENTION = timedelta(days=7)


# ---------------------------------------------------------------- labels and notes


def transaction_label_set(*, tx, label: str, note: str, user, actor: str) -> TransactionLabel | None:
    """Set (or, with label "", remove) the analyst's label and note on a transaction, with an audit
    event naming the change. The caller has already found `tx` in the user's scope."""
    note = note.strip()
    with transaction.atomic():
        current = TransactionLabel.objects.select_for_update().filter(transaction=tx).first()
        before = {"label": current.label, "note": current.note} if current else {"label": "", "note": ""}
        if not label:
            if current is None:
                return None
            current.delete()
            audit_record(issuer_id=tx.issuer_id, kind=LABEL_REMOVED, actor=actor, acs_trans_id=tx.acs_trans_id,
                         data={"before": before})
            return None
        if current is not None and (current.label, current.note) == (label, note):
            return current  # nothing changed: no event
        if current is None:
            current = TransactionLabel(transaction=tx, issuer_id=tx.issuer_id, transaction_created_at=tx.created_at)
        current.label, current.note, current.labelled_by = label, note, user
        current.save()
        audit_record(issuer_id=tx.issuer_id, kind=LABEL_SET, actor=actor, acs_trans_id=tx.acs_trans_id, obj=current,
                     data={"before": before, "after": {"label": label, "note": note}})
        return current


# ---------------------------------------------------------------- access log


def access_record(*, issuer_id, user, kind: str, acs_trans_id=None, export_id=None, filters: dict | None = None,
                  rows: int | None = None) -> None:
    """One INSERT, nothing read: on the transaction page's path (p95 ~20 ms)."""
    AccessRecord.objects.create(
        issuer_id=issuer_id, user=user, actor=user.get_username()[:150], kind=kind, acs_trans_id=acs_trans_id,
        export_id=export_id, filters=filters or {}, rows=rows,
    )


# ---------------------------------------------------------------- streamed export records


def export_started_record(*, issuer, actor: str, filters: TransactionFilters, export_id: str) -> None:
    """Written before the first byte leaves: an export is on record even if the process dies."""
    audit_record(issuer=issuer, kind=EXPORT_STARTED, actor=actor, data={"export": export_id, "filters": filters.describe()})


def export_finished_record(*, issuer, actor: str, filters: TransactionFilters, export_id: str, rows: int, completed: bool) -> None:
    """`completed` is false when the download stopped early (client gone, error): `rows` were sent."""
    audit_record(
        issuer=issuer, kind=EXPORT_FINISHED, actor=actor,
        data={"export": export_id, "filters": filters.describe(), "rows": rows, "completed": completed},
    )


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_trailer(rows: int) -> list[str]:
    """The last CSV record: one cell, `# end of export: N rows`."""
    return [f"{TRAILER_PREFIX}{rows} rows"]


# ---------------------------------------------------------------- export jobs


def export_dir() -> Path:
    path = Path(settings.ANALYST_EXPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_file_path(job: ExportJob) -> Path:
    """The complete file; it exists only once the job is done (written under a temporary name)."""
    return export_dir() / f"{job.pk}.csv"


def export_job_create(*, issuer, user, actor: str, filters: TransactionFilters) -> ExportJob:
    """The job, its audit event and access record, and its wake-up on commit."""
    with transaction.atomic():
        job = ExportJob.objects.create(issuer=issuer, requested_by=user, actor=actor, filters=filters.describe())
        audit_record(issuer=issuer, kind=EXPORT_STARTED, actor=actor,
                     data={"export": str(job.pk), "filters": job.filters, "background": True})
        access_record(issuer_id=issuer.pk, user=user, kind=AccessRecord.EXPORT, export_id=job.pk, filters=job.filters)
        transaction.on_commit(lambda: export_job_wake(job.pk))
    return job


def export_job_wake(job_id) -> None:
    from apps.analyst.tasks import export_run

    try:
        export_run.apply_async(args=[str(job_id)], retry=True, retry_policy={"max_retries": 0})
    except Exception as exc:  # the broker is down: the sweep sends it again
        logger.warning("export %s: the broker refused the wake-up (%s); the sweep will send it", job_id, exc.__class__.__name__)


def _claim(job_id) -> ExportJob | None:
    """Pending, or running under a lapsed lease, with tries left → running, ours."""
    now = timezone.now()
    claimed = (
        ExportJob.objects.filter(pk=job_id, tries__lt=F("max_tries"))
        .filter(Q(status=ExportJob.PENDING) | Q(status=ExportJob.RUNNING, lease_expires_at__lt=now))
        .update(status=ExportJob.RUNNING, tries=F("tries") + 1, lease_expires_at=now + EXPORT_LEASE, started_at=now)
    )
    return ExportJob.objects.select_related("issuer").get(pk=job_id) if claimed else None


def _still_ours(job: ExportJob) -> bool:
    """Renew the lease; false when the job was taken over or ended meanwhile."""
    return bool(ExportJob.objects.filter(pk=job.pk, status=ExportJob.RUNNING, tries=job.tries)
                .update(lease_expires_at=timezone.now() + EXPORT_LEASE))


def export_job_run(job_id) -> None:
    """Write the job's CSV to `<id>.<try>.part`, then rename it to `<id>.csv` and mark the job done.
    A try that dies leaves only a .part file (never served, removed by the next try)."""
    job = _claim(job_id)
    if job is None:
        return  # done, failed, or another worker holds a live lease
    scope, filters = Scope(issuer=job.issuer), TransactionFilters.from_described(job.filters)
    directory = export_dir()
    for stale in directory.glob(f"{job.pk}.*.part"):
        stale.unlink(missing_ok=True)
    part = directory / f"{job.pk}.{job.tries}.part"
    rows = 0
    try:
        with open(part, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(EXPORT_HEADER)
            for values in transaction_export_rows(scope=scope, filters=filters):
                writer.writerow([csv_cell(v) for v in values])
                rows += 1
                if rows % LEASE_RENEW_ROWS == 0 and not _still_ours(job):
                    part.unlink(missing_ok=True)
                    return
            writer.writerow(export_trailer(rows))
            out.flush()
            os.fsync(out.fileno())
        if not _still_ours(job):
            part.unlink(missing_ok=True)
            return
        os.replace(part, export_file_path(job))  # atomic: the complete file appears at once
    except Exception as exc:
        part.unlink(missing_ok=True)
        logger.exception("export %s failed", job.pk)
        _fail(job, f"{exc.__class__.__name__}: {exc}"[:500], tries=job.tries)
        return
    finished = ExportJob.objects.filter(pk=job.pk, status=ExportJob.RUNNING, tries=job.tries).update(
        status=ExportJob.DONE, rows=rows, finished_at=timezone.now(), lease_expires_at=None, error="",
    )
    if finished:
        audit_record(issuer=job.issuer, kind=EXPORT_FINISHED, actor=job.actor,
                     data={"export": str(job.pk), "filters": job.filters, "rows": rows, "completed": True, "background": True})


def _fail(job: ExportJob, reason: str, *, tries: int | None = None) -> bool:
    qs = ExportJob.objects.filter(pk=job.pk, status__in=[ExportJob.PENDING, ExportJob.RUNNING])
    if tries is not None:
        qs = qs.filter(tries=tries)
    failed = qs.update(status=ExportJob.FAILED, error=reason, finished_at=timezone.now(), lease_expires_at=None)
    if failed:
        audit_record(issuer_id=job.issuer_id, kind=EXPORT_FINISHED, actor=job.actor,
                     data={"export": str(job.pk), "filters": job.filters, "completed": False, "error": reason, "background": True})
    return bool(failed)


def export_jobs_sweep() -> dict:
    """Nothing stuck: a running job whose worker died (lease lapsed) runs again while it has tries
    left, else fails with the reason; a pending job whose wake-up was lost is sent again."""
    now = timezone.now()
    woken, failed = 0, 0
    lapsed = ExportJob.objects.filter(status=ExportJob.RUNNING, lease_expires_at__lt=now)
    for job in lapsed:
        if job.tries >= job.max_tries:
            reason = f"The export stopped {job.tries} times before finishing (worker lost); start it again."
            failed += _fail(job, reason, tries=job.tries)
        else:
            export_job_wake(job.pk)
            woken += 1
    for job_id in ExportJob.objects.filter(status=ExportJob.PENDING, created_at__lt=now - PENDING_GRACE).values_list("pk", flat=True):
        export_job_wake(job_id)
        woken += 1
    removed = 0
    for job in ExportJob.objects.filter(status=ExportJob.DONE, finished_at__lt=now - EXPORT_RETENTION).exclude(error=EXPIRED):
        export_file_path(job).unlink(missing_ok=True)
        removed += ExportJob.objects.filter(pk=job.pk).update(error=EXPIRED)
    return {"woken": woken, "failed": failed, "removed": removed}
