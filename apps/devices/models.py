"""The cardholder's app instances (WebAuthn authenticators) and the one-time tokens that enroll them.

Secrets are never stored in clear: enrollment and device tokens are bearer secrets kept as a
keyed hash (apps.core.crypto.hash_secret); the push token must be usable to send, so it is
encrypted (seal) with the device id as context.
"""

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.core.crypto import Sealed, seal, unseal

PUSH_FCM = "fcm"
PUSH_APNS = "apns"
PUSH_PLATFORMS = [(PUSH_FCM, "Firebase Cloud Messaging"), (PUSH_APNS, "Apple Push Notification service")]


class DeviceEnrollment(models.Model):
    """A short-lived, single-use permission for the issuer app to register one device."""

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    issuer = models.ForeignKey(
        "issuers.Issuer", on_delete=models.CASCADE, related_name="device_enrollments", verbose_name=_("issuer")
    )
    cardholder = models.ForeignKey(
        "cards.Cardholder", on_delete=models.CASCADE, related_name="device_enrollments", verbose_name=_("cardholder")
    )
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(_("expires"))
    # The WebAuthn challenge of the latest registration options; not a secret on its own (the
    # enrollment token is), kept as-is because the verifier needs the bytes.
    challenge = models.BinaryField(_("WebAuthn challenge"), null=True, editable=False)
    challenge_issued_at = models.DateTimeField(_("WebAuthn challenge issued"), null=True, editable=False)
    used_at = models.DateTimeField(_("used"), null=True, editable=False)
    created_by = models.CharField(_("created by"), max_length=150, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("device enrollment")
        verbose_name_plural = _("device enrollments")

    def __str__(self) -> str:
        return f"Enrollment {self.pk}"

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()


class WebAuthnUserHandle(models.Model):
    """The opaque WebAuthn user.id of a cardholder: random, stable, says nothing about the person."""

    cardholder = models.OneToOneField(
        "cards.Cardholder", on_delete=models.CASCADE, related_name="webauthn_handle", verbose_name=_("cardholder")
    )
    handle = models.BinaryField(_("WebAuthn user handle"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("WebAuthn user handle")
        verbose_name_plural = _("WebAuthn user handles")


class Device(models.Model):
    STATUS_ACTIVE = "active"
    STATUS_REVOKED = "revoked"
    # A sign counter went backwards: the credential may have been copied. Only staff can lift it.
    STATUS_BLOCKED = "blocked"
    STATUSES = [
        (STATUS_ACTIVE, _("Active")), (STATUS_REVOKED, _("Revoked")), (STATUS_BLOCKED, _("Blocked (possibly cloned)")),
    ]

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="devices", verbose_name=_("issuer"))
    cardholder = models.ForeignKey(
        "cards.Cardholder", on_delete=models.CASCADE, related_name="devices", verbose_name=_("cardholder")
    )
    # One enrollment makes at most one device, also when two registrations race.
    enrollment = models.OneToOneField(
        DeviceEnrollment, on_delete=models.SET_NULL, null=True, editable=False, related_name="device",
        verbose_name=_("device enrollment"),
    )
    name = models.CharField(pgettext_lazy("device", "name"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=STATUSES, default=STATUS_ACTIVE)

    credential_id = models.BinaryField(_("credential ID"), max_length=1023, unique=True, editable=False)
    public_key = models.BinaryField(_("public key"), editable=False, help_text="COSE_Key of the credential.")
    sign_count = models.PositiveBigIntegerField(_("signature counter"), default=0, editable=False)
    aaguid = models.CharField(_("AAGUID"), max_length=36, blank=True, editable=False)
    attestation_format = models.CharField(_("attestation format"), max_length=32, editable=False)

    push_platform = models.CharField(_("push platform"), max_length=10, choices=PUSH_PLATFORMS)
    push_token_key_id = models.CharField(_("push token key ID"), max_length=32, editable=False, blank=True)
    push_token_blob = models.BinaryField(_("push token (encrypted)"), editable=False, null=True)

    token_hash = models.CharField(_("token hash"), max_length=64, unique=True, editable=False)

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    blocked_at = models.DateTimeField(_("blocked"), null=True, blank=True, editable=False)
    blocked_reason = models.CharField(_("reason for blocking"), max_length=100, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        indexes = [models.Index(fields=["cardholder", "status"], name="device_cardholder_status_idx")]

    def __str__(self) -> str:
        return self.name or f"Device {str(self.pk)[:8]}"

    @property
    def is_active(self) -> bool:
        return self.status == self.STATUS_ACTIVE

    def _push_context(self) -> str:
        return f"device-push-token:{self.pk}"

    def set_push_token(self, token: str) -> None:
        sealed = seal(token, context=self._push_context())
        self.push_token_key_id, self.push_token_blob = sealed.key_id, sealed.blob

    def get_push_token(self) -> str | None:
        if not self.push_token_blob:
            return None
        return unseal(Sealed(self.push_token_key_id, bytes(self.push_token_blob)), context=self._push_context())
