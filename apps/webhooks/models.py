from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.delivery.models import OutboundAttempt, OutboundDelivery

KIND_DELIVER_OTP = "deliver_otp"
KIND_3DS_NOTIFICATION = "3ds_notification"


class WebhookDelivery(OutboundDelivery):
    """One logical call to an issuer's backend on the delivery engine (apps.delivery); one
    WebhookAttempt per try. A try in flight is a pending delivery holding a lease.

    The body is kept only encrypted (it may carry an OTP) and only while it may still be sent;
    `display_payload` is the same document with its secrets redacted, for people to read."""

    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
    STATUSES = [(PENDING, _("Pending")), (SUCCEEDED, _("Succeeded")), (FAILED, _("Failed"))]
    TERMINAL = (SUCCEEDED, FAILED)

    issuer = models.ForeignKey(
        "issuers.Issuer", on_delete=models.CASCADE, related_name="webhook_deliveries", verbose_name=_("issuer")
    )
    kind = models.CharField(_("kind"), max_length=40, db_index=True)
    url = models.CharField("URL", max_length=500)
    acs_trans_id = models.UUIDField("acsTransID", null=True, blank=True, db_index=True)
    status = models.CharField(_("status"), max_length=12, choices=STATUSES, default=PENDING)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)
    display_payload = models.JSONField(_("payload (secrets redacted)"), default=dict)
    # Set when the payload holds values (an OTP) that must not outlive the delivery, even a failed one.
    has_secrets = models.BooleanField(_("holds secrets"), default=False)
    payload_key_id = models.CharField(_("payload key ID"), max_length=32, blank=True, editable=False)
    payload_blob = models.BinaryField(_("payload (encrypted)"), null=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(fields=["issuer", "-created_at"], name="webhook_issuer_created_idx"),
            # The delivery sweep: pending and due.
            models.Index(fields=["status", "next_attempt_at"], name="webhook_status_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def payload_context(self) -> str:
        return f"webhook:{self.pk}"


class WebhookAttempt(OutboundAttempt):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts", verbose_name=_("delivery"))
    error_class = models.CharField(_("error class"), max_length=100, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_uniq")]

    def __str__(self) -> str:
        return f"try {self.number} of {self.delivery_id}"
