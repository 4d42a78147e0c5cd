from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.core.crypto import Sealed, seal, unseal

issuer_id_validator = RegexValidator(r"^[A-Za-z0-9]{10}$", "issuer_id is exactly 10 letters or digits.")

# How OTPs reach the cardholder is OTP policy (apps.otp), set at bootstrap with these values.
OTP_DELIVERY_PROVIDER = "provider"
OTP_DELIVERY_ISSUER = "issuer"


class Issuer(models.Model):
    """The tenant. Every other record belongs to exactly one issuer."""

    issuer_id = models.CharField(_("issuer ID"), max_length=10, unique=True, validators=[issuer_id_validator])
    name = models.CharField(pgettext_lazy("issuer", "name"), max_length=120)
    country = models.CharField(_("country"), max_length=2, default="JP", help_text=_("ISO 3166-1 alpha-2 home country."))
    notification_base_url = models.URLField(_("notification base URL"), blank=True)
    deliver_otp_url = models.URLField(_("OTP delivery URL"), blank=True)
    webauthn_rp_id = models.CharField(_("WebAuthn RP ID"), max_length=253, blank=True)
    webauthn_origins = models.JSONField(_("WebAuthn origins"), default=list, blank=True)
    # Outbound webhook signing secret: must be usable to sign, so it is encrypted, not hashed.
    webhook_secret_key_id = models.CharField(_("webhook secret key ID"), max_length=32, editable=False, blank=True)
    webhook_secret_blob = models.BinaryField(_("webhook secret (encrypted)"), editable=False, null=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["issuer_id"]
        verbose_name = _("issuer")
        verbose_name_plural = _("issuers")

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

    issuer = models.ForeignKey(Issuer, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("issuer"))
    name = models.CharField(pgettext_lazy("API key", "name"), max_length=100)
    prefix = models.CharField(_("key prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} (ik_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# BIN grants are compared on an 11-digit PAN prefix: the longest grant length, and short enough
# that every prefix fits a 64-bit integer (so the database can index and exclude on it).
GRANT_PREFIX_DIGITS = 11
GRANT_MIN_DIGITS = 6

bin_validator = RegexValidator(
    rf"^[0-9]{{{GRANT_MIN_DIGITS},{GRANT_PREFIX_DIGITS}}}$", f"{GRANT_MIN_DIGITS} to {GRANT_PREFIX_DIGITS} digits."
)


def prefix_interval(start: str, end: str) -> tuple[int, int]:
    """A BIN range (prefixes of one length; any length, longer ones are cut) as the closed
    interval of 11-digit PAN prefixes it covers."""
    n = GRANT_PREFIX_DIGITS
    return int(start[:n].ljust(n, "0")), int(end[:n].ljust(n, "9"))


def pan_prefix_key(pan: str) -> int:
    """The PAN's first 11 digits as an integer: what grants are compared against. Not the PAN."""
    return int(pan[:GRANT_PREFIX_DIGITS])


class BinGrant(models.Model):
    """A range of PAN prefixes granted to one issuer by the platform operator.

    Grants never overlap (any two issuers, or one issuer twice), so a PAN belongs to at most one
    issuer. The database enforces it on `low`/`high` (migration issuers 0003: an exclusion
    constraint on PostgreSQL, triggers on SQLite), so no code path can slip an overlap in."""

    issuer = models.ForeignKey(Issuer, on_delete=models.CASCADE, related_name="bin_grants", verbose_name=_("issuer"))
    start = models.CharField(_("start"), max_length=GRANT_PREFIX_DIGITS, validators=[bin_validator])
    end = models.CharField(_("end"), max_length=GRANT_PREFIX_DIGITS, validators=[bin_validator])
    low = models.BigIntegerField(_("lowest PAN prefix"), editable=False)
    high = models.BigIntegerField(_("highest PAN prefix"), editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True, editable=False)

    class Meta:
        ordering = ["low"]
        verbose_name = _("BIN grant")
        verbose_name_plural = _("BIN grants")
        constraints = [
            models.CheckConstraint(condition=models.Q(low__lte=models.F("high")), name="bin_grant_low_lte_high"),
        ]
        indexes = [models.Index(fields=["issuer", "low"], name="bin_grant_issuer_low")]

    def __str__(self) -> str:
        return f"{self.start}–{self.end}"

    def save(self, *args, **kwargs):
        # low/high always follow start/end: they are what the database compares.
        self.low, self.high = prefix_interval(self.start, self.end)
        super().save(*args, **kwargs)

    def contains_prefix(self, key: int) -> bool:
        return self.low <= key <= self.high
