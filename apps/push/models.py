"""Push notifications to the cardholder's app (SPEC §3.4): one delivery per pending OOB request and
device, one attempt per try.

A push names the pending request (acsTransID) and nothing else; the device's push token stays
encrypted on the Device and is read only by the worker that sends.
"""

import uuid

from django.db import models
from django.db.models import Q

from apps.devices.models import PUSH_PLATFORMS


class PushDelivery(models.Model):
    PENDING, SENDING, SENT, FAILED, REFUSED = "pending", "sending", "sent", "failed", "refused"
    STATUSES = [(s, s) for s in (PENDING, SENDING, SENT, FAILED, REFUSED)]
    UNDELIVERABLE = (FAILED, REFUSED)

    # A UUID, the only thing the task message carries.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Both FKs are the first column of an index below, which serves them too.
    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="push_deliveries", db_index=False)
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="push_deliveries", db_index=False)
    acs_trans_id = models.UUIDField(help_text="The pending OOB request the push names.")
    platform = models.CharField(max_length=10, choices=PUSH_PLATFORMS, help_text="The device's, when created.")
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    tries = models.PositiveSmallIntegerField(default=0)
    max_tries = models.PositiveSmallIntegerField()
    # When a worker should next act: the next try (pending), the end of a claim (sending), or
    # telling the OOB flow that the push is undeliverable (failed, refused). NULL: nothing left.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=10, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=255, blank=True, help_text="Scrubbed.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    undeliverable_reported_at = models.DateTimeField(
        null=True, blank=True, help_text="When the OOB flow was told this push cannot be delivered."
    )

    class Meta:
        verbose_name = "push delivery"
        verbose_name_plural = "push deliveries"
        ordering = ["-created_at"]
        indexes = [
            # The push-bombing limit counts a device's deliveries of the last minute.
            models.Index(fields=["device", "created_at"], name="push_device_created_idx"),
            models.Index(fields=["issuer", "-created_at"], name="push_issuer_created_idx"),
            models.Index(fields=["acs_trans_id"], name="push_acs_trans_id_idx"),
            # The resume job reads only deliveries with work left.
            models.Index(fields=["next_attempt_at"], condition=Q(next_attempt_at__isnull=False), name="push_work_left_idx"),
        ]

    def __str__(self) -> str:
        return f"Push {self.acs_trans_id} ({self.status})"


class PushAttempt(models.Model):
    """One try: recorded when claimed, completed when the provider answered."""

    CLAIMED, SUCCEEDED = "claimed", "succeeded"
    FAILED_TRANSIENT, FAILED_PERMANENT, INTERRUPTED = "failed_transient", "failed_permanent", "interrupted"
    OUTCOMES = [(s, s) for s in (CLAIMED, SUCCEEDED, FAILED_TRANSIENT, FAILED_PERMANENT, INTERRUPTED)]

    # The unique (delivery, number) index below serves the FK too.
    delivery = models.ForeignKey(PushDelivery, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=20, choices=OUTCOMES, default=CLAIMED)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The provider's HTTP status.")
    error_code = models.CharField(max_length=32, blank=True)
    error_class = models.CharField(max_length=64, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True, help_text="Scrubbed.")
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = "push attempt"
        ordering = ["number"]
        constraints = [
            # Two workers can never both hold the same try.
            models.UniqueConstraint(fields=["delivery", "number"], name="push_attempt_number_uniq"),
        ]

    def __str__(self) -> str:
        return f"Try {self.number} ({self.outcome})"
