from django.db import models

KIND_DELIVER_OTP = "deliver_otp"
KIND_3DS_NOTIFICATION = "3ds_notification"


class WebhookDelivery(models.Model):
    """One logical call to an issuer's backend; one WebhookAttempt per try.

    The body is kept only encrypted (it may carry an OTP) and only while it may still be sent;
    `display_payload` is the same document with its secrets redacted, for people to read."""

    PENDING, DELIVERING, SUCCEEDED, FAILED = "pending", "delivering", "succeeded", "failed"
    STATUSES = [(PENDING, "Pending"), (DELIVERING, "Delivering"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed")]
    TERMINAL = (SUCCEEDED, FAILED)

    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="webhook_deliveries")
    kind = models.CharField(max_length=40, db_index=True)
    url = models.CharField(max_length=500)
    acs_trans_id = models.UUIDField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=12, choices=STATUSES, default=PENDING)
    tries = models.PositiveSmallIntegerField(default=0)
    # A manual retry grants another round, so the bound lives on the row.
    max_tries = models.PositiveSmallIntegerField()
    # Pending: when the next try is due. Delivering: when the claim lapses (the worker died).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    display_payload = models.JSONField(default=dict)
    # Set when the payload holds values (an OTP) that must not outlive the delivery, even a failed one.
    has_secrets = models.BooleanField(default=False)
    payload_key_id = models.CharField(max_length=32, blank=True, editable=False)
    payload_blob = models.BinaryField(null=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["issuer", "-created_at"], name="webhook_issuer_created_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_status_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def payload_context(self) -> str:
        return f"webhook:{self.pk}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error_class = models.CharField(max_length=100, blank=True)
    task_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_uniq")]

    def __str__(self) -> str:
        return f"try {self.number} of {self.delivery_id}"
