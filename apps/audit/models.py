from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """Append-only record of what happened, when, and by whom. Data is scrubbed before it is
    written; rows are never updated or deleted (enforced by the database on PostgreSQL)."""

    # Covered by audit_issuer_created_idx, which starts with it.
    issuer = models.ForeignKey(
        "issuers.Issuer", verbose_name=_("issuer"), on_delete=models.PROTECT, related_name="audit_events", db_index=False)
    acs_trans_id = models.UUIDField(verbose_name="acsTransID", null=True, blank=True, db_index=True)
    kind = models.CharField(verbose_name=_("kind"), max_length=64)  # never looked up alone: events are read per issuer or per transaction
    actor = models.CharField(verbose_name=_("actor"), max_length=150)
    object_type = models.CharField(verbose_name=_("object type"), max_length=64, blank=True)
    object_id = models.CharField(verbose_name=_("object ID"), max_length=64, blank=True)
    data = models.JSONField(verbose_name=_("data"), default=dict, blank=True)
    # Stamped when the event is made, not when it is written: a request that writes its events in
    # one INSERT at the end (audit_record(batch=...)) keeps them in the order things happened.
    created_at = models.DateTimeField(verbose_name=_("created"), default=timezone.now, editable=False, db_index=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["issuer", "-created_at"], name="audit_issuer_created_idx")]

    def __str__(self) -> str:
        return f"{self.kind} by {self.actor}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise RuntimeError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("Audit events are append-only.")
