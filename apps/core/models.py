from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotencyRecord(models.Model):
    """The first successful response to a POST carrying an Idempotency-Key, replayed for the
    same key, method, path and body. Scoped per caller so one tenant's keys never meet another's,
    and per method and path (`target`) so a key reused on another resource never answers with
    the first resource's response (e.g. another cardholder's enrollment token)."""

    scope = models.CharField(verbose_name=_("scope"), max_length=64)
    key = models.CharField(verbose_name=_("key"), max_length=255)
    method = models.CharField(verbose_name=_("HTTP method"), max_length=8)
    # For reading only (cut to the column); `target` is what identifies the request's resource.
    path = models.CharField(verbose_name=_("path"), max_length=512)
    target = models.CharField(verbose_name=_("target"), max_length=64, default="", help_text="SHA-256 of method and full path.")
    request_hash = models.CharField(verbose_name=_("request hash"), max_length=64)
    status_code = models.PositiveSmallIntegerField(verbose_name=_("HTTP status"), null=True)
    response_body = models.JSONField(verbose_name=_("response body"), null=True)
    created_at = models.DateTimeField(verbose_name=_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["scope", "key", "target"], name="idempotency_scope_key_target_uniq")]


class WorkerHeartbeat(models.Model):
    """Written by a Celery task: proves a worker consumed from the broker and reached the DB."""

    hostname = models.CharField(verbose_name=_("host name"), max_length=255)
    nonce = models.CharField(verbose_name=_("nonce"), max_length=64, db_index=True)
    created_at = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")
