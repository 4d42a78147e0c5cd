from django.core.validators import RegexValidator
from django.db import models

from apps.core.crypto import Sealed, seal, unseal

issuer_id_validator = RegexValidator(r"^[A-Za-z0-9]{10}$", "issuer_id is exactly 10 letters or digits.")

# How OTPs reach the cardholder is OTP policy (apps.otp), set at bootstrap with these values.
OTP_DELIVERY_PROVIDER = "provider"
OTP_DELIVERY_ISSUER = "issuer"


class Issuer(models.Model):
    """The tenant. Every other record belongs to exactly one issuer."""

    issuer_id = models.CharField(max_length=10, unique=True, validators=[issuer_id_validator])
    name = models.CharField(max_length=120)
    country = models.CharField(max_length=2, default="JP", help_text="ISO 3166-1 alpha-2 home country.")
    notification_base_url = models.URLField(blank=True)
    deliver_otp_url = models.URLField(blank=True)
    webauthn_rp_id = models.CharField(max_length=253, blank=True)
    webauthn_origins = models.JSONField(default=list, blank=True)
    # Outbound webhook signing secret: must be usable to sign, so it is encrypted, not hashed.
    webhook_secret_key_id = models.CharField(max_length=32, editable=False, blank=True)
    webhook_secret_blob = models.BinaryField(editable=False, null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["issuer_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.issuer_id})"

    def _secret_context(self) -> str:
        return f"issuer-webhook-secret:{self.issuer_id}"

    def set_webhook_secret(self, secret: str) -> None:
        sealed = seal(secret, context=self._secret_context())
        self.webhook_secret_key_id, self.webhook_secret_blob = sealed.key_id, sealed.blob

    def get_webhook_secret(self) -> str | None:
        if not self.webhook_secret_blob:
            return None
        return unseal(Sealed(self.webhook_secret_key_id, bytes(self.webhook_secret_blob)), context=self._secret_context())


class ApiKey(models.Model):
    """A bearer key of the issuer API. Shown once; only a keyed hash is stored.

    The key reads `ik_<prefix>_<secret>`; the prefix finds the row, the hash proves the secret."""

    issuer = models.ForeignKey(Issuer, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (ik_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
