"""What analysts write: a label (confirmed fraud / genuine) and a note on a transaction — their
only write (SPEC §5.6), audited. The policy backtest counts these labels."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class TransactionLabel(models.Model):
    FRAUD, GENUINE = "fraud", "genuine"
    LABELS = [(FRAUD, _("Confirmed fraud")), (GENUINE, _("Genuine"))]

    # One label per transaction: the latest analyst's judgement; its changes are in the audit log.
    transaction = models.OneToOneField(
        "threeds.Transaction", on_delete=models.CASCADE, related_name="label", verbose_name=_("transaction")
    )
    # Denormalised from the transaction so per-issuer filters and the backtest need no join.
    issuer = models.ForeignKey(
        "issuers.Issuer", on_delete=models.CASCADE, related_name="transaction_labels", verbose_name=_("issuer")
    )
    label = models.CharField(_("label"), max_length=10, choices=LABELS)
    note = models.TextField(_("note"), blank=True, max_length=2000)
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("labelled by")
    )
    # The transaction's own time, copied: the dashboard counts a period's labels from this index
    # alone (joined to the transactions in the period, PostgreSQL read them all: 60–160 ms at 1M).
    transaction_created_at = models.DateTimeField(_("transaction created"), null=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("transaction label")
        verbose_name_plural = _("transaction labels")
        indexes = [
            models.Index(fields=["issuer", "label"], name="analyst_label_issuer_label"),
            models.Index(fields=["issuer", "transaction_created_at"], name="analyst_label_issuer_tx_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_label_display()} — {self.transaction_id}"


class AccessRecord(models.Model):
    """Who looked at what in the workspace: a transaction page viewed, an export streamed or
    requested, an export file downloaded. Written with one INSERT on the way (no read first), read
    by issuer admins and superusers in the admin; analysts do not read each other's trail."""

    VIEW, EXPORT, DOWNLOAD = "view", "export", "download"
    KINDS = [(VIEW, _("Transaction viewed")), (EXPORT, _("Export")), (DOWNLOAD, _("Export file downloaded"))]

    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="+", verbose_name=_("issuer"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("user"))
    # The username as it was, so the record reads the same after the account is removed.
    actor = models.CharField(_("who"), max_length=150)
    kind = models.CharField(_("what"), max_length=10, choices=KINDS)
    acs_trans_id = models.UUIDField(_("acsTransID"), null=True, blank=True)
    export_id = models.UUIDField(_("export"), null=True, blank=True)
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("analyst access record")
        verbose_name_plural = _("analyst access log")
        indexes = [models.Index(fields=["issuer", "-at"], name="analyst_access_issuer_at")]

    def __str__(self) -> str:
        return f"{self.actor} {self.kind} {self.at:%Y-%m-%d %H:%M:%S}"


class ExportJob(models.Model):
    """A CSV export too large to stream within a web worker's timeout, written by a Celery task to
    a private file (ANALYST_EXPORT_DIR) under a temporary name and renamed only when complete."""

    PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
    STATUSES = [(PENDING, _("Waiting")), (RUNNING, _("Running")), (DONE, _("Ready")), (FAILED, _("Failed"))]

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="+", verbose_name=_("issuer"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("requesting user")
    )
    actor = models.CharField(_("requested by"), max_length=150)
    # TransactionFilters.describe(): what was asked, replayed by the task and shown on the job page.
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=STATUSES, default=PENDING)
    tries = models.PositiveSmallIntegerField(pgettext_lazy("export job", "tries"), default=0)
    max_tries = models.PositiveSmallIntegerField(_("maximum tries"), default=3)
    # While running, the worker extends this as it writes; a lapsed lease means the worker died.
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        indexes = [
            models.Index(fields=["issuer", "-created_at"], name="analyst_export_issuer_created"),
            # The sweep's scan: only unfinished jobs.
            models.Index(fields=["status"], condition=models.Q(status__in=["pending", "running"]), name="analyst_export_open"),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"

    @property
    def downloadable(self) -> bool:
        """Done, and its file not yet removed after the retention period (which notes it in `error`)."""
        return self.status == self.DONE and not self.error
