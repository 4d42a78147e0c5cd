from django.db import models


class IdempotencyRecord(models.Model):
    """The first successful response to a POST carrying an Idempotency-Key, replayed for the
    same key and body. Scoped per caller so one tenant's keys never meet another's."""

    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_uniq")]


class WorkerHeartbeat(models.Model):
    """Written by a Celery task: proves a worker consumed from the broker and reached the DB."""

    hostname = models.CharField(max_length=255)
    nonce = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
