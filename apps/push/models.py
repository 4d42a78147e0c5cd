"""Push notifications to the cardholder's app (SPEC §3.4): one delivery per pending OOB request and
device, one attempt per try, on the delivery engine's shapes (apps.delivery.models).

A push names the pending request (acsTransID) and nothing else; the device's push token stays
encrypted on the Device and is read only by the worker that sends.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.delivery.models import OutboundAttempt, OutboundDelivery
from apps.devices.models import PUSH_PLATFORMS


class PushDelivery(OutboundDelivery):
    """One push on the delivery engine: pending while it takes tries (a try in flight holds the
    engine's lease), then sent, failed, or refused (over the per-device limit: never pending)."""

    PENDING, SENT, FAILED, REFUSED = "pending", "sent", "failed", "refused"
    STATUSES = [
        (PENDING, pgettext_lazy("push status", "pending")),
        (SENT, pgettext_lazy("push status", "sent")),
        (FAILED, pgettext_lazy("push status", "failed")),
        (REFUSED, pgettext_lazy("push status", "refused")),
    ]
    UNDELIVERABLE = (FAILED, REFUSED)

    # A UUID, the only thing the task message carries.
    id = models.UUIDField("ID", primary_key=True, default=uuid.uuid4, editable=False)
    # Both FKs are the first column of an index below, which serves them too.
    issuer = models.ForeignKey(
        "issuers.Issuer", on_delete=models.CASCADE, related_name="push_deliveries", db_index=False, verbose_name=_("issuer")
    )
    device = models.ForeignKey(
        "devices.Device", on_delete=models.CASCADE, related_name="push_deliveries", db_index=False, verbose_name=_("device")
    )
    acs_trans_id = models.UUIDField("acsTransID", help_text=_("The pending OOB request the push names."))
    platform = models.CharField(
        _("platform"), max_length=10, choices=PUSH_PLATFORMS, help_text=_("The device's, when created.")
    )
    status = models.CharField(_("status"), max_length=12, choices=STATUSES, default=PENDING)
    provider = models.CharField(pgettext_lazy("push", "provider"), max_length=10, blank=True)
    provider_message_id = models.CharField(_("provider's message ID"), max_length=200, blank=True)
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error_message = models.CharField(_("error message"), max_length=255, blank=True, help_text=_("Scrubbed."))
    undeliverable_reported_at = models.DateTimeField(
        _("undeliverable reported"), null=True, blank=True,
        help_text=_("When the OOB flow was told this push cannot be delivered."),
    )

    class Meta:
        verbose_name = _("push delivery")
        verbose_name_plural = _("push deliveries")
        ordering = ["-created_at"]
        indexes = [
            # The push-bombing limit counts a device's deliveries of the last minute.
            models.Index(fields=["device", "created_at"], name="push_device_created_idx"),
            models.Index(fields=["issuer", "-created_at"], name="push_issuer_created_idx"),
            models.Index(fields=["acs_trans_id"], name="push_acs_trans_id_idx"),
            # The delivery sweep reads only pending rows.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="push_delivery_due_idx"),
            # The sweep's safety net for undeliverable pushes not yet reported to the OOB flow
            # (normally none: a failure is reported in the transaction that ends the delivery).
            models.Index(
                fields=["finished_at"], condition=Q(status__in=["failed", "refused"], undeliverable_reported_at__isnull=True),
                name="push_unreported_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Push {self.acs_trans_id} ({self.status})"


class PushAttempt(OutboundAttempt):
    """One try: recorded when claimed, completed when the provider answered."""

    # The unique (delivery, number) index below serves the FK too.
    delivery = models.ForeignKey(
        PushDelivery, on_delete=models.CASCADE, related_name="attempts", db_index=False, verbose_name=_("delivery")
    )
    provider = models.CharField(pgettext_lazy("push", "provider"), max_length=10, blank=True)
    # The provider's id of the message this try sent (a success only). Not indexed: the delivery
    # carries the accepted one.
    provider_message_id = models.CharField(_("provider's message ID"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("push attempt")
        verbose_name_plural = _("push attempts")
        ordering = ["number"]
        constraints = [
            # Two workers can never both hold the same try.
            models.UniqueConstraint(fields=["delivery", "number"], name="push_attempt_number_uniq"),
        ]

    def __str__(self) -> str:
        return f"Try {self.number} ({self.state})"
