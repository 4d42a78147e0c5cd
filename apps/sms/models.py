import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.core.crypto import Sealed, seal, unseal
from apps.delivery.models import OutboundAttempt, OutboundDelivery

TWILIO, CONSOLE, FILE = "twilio", "console", "file"
BACKENDS = [(TWILIO, "Twilio"), (CONSOLE, _("Console (development)")), (FILE, _("File (JSON lines, demos and tests)"))]
PRIMARY, FALLBACK = "primary", "fallback"
ROLES = [(PRIMARY, _("Primary")), (FALLBACK, _("Fallback (after the primary gives up)"))]


class SmsProviderConfig(models.Model):
    """An issuer's own SMS account for one role. A role without a row uses the settings
    (SMS_BACKEND / SMS_FALLBACK_BACKEND and TWILIO_*)."""

    issuer = models.ForeignKey(
        "issuers.Issuer", on_delete=models.CASCADE, related_name="sms_providers", verbose_name=_("issuer")
    )
    role = models.CharField(_("role"), max_length=10, choices=ROLES, default=PRIMARY)
    backend = models.CharField(_("backend"), max_length=10, choices=BACKENDS, default=TWILIO)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive: the settings' provider is used for this role.")
    )
    account_sid = models.CharField(_("account SID"), max_length=34, blank=True)
    # The auth token signs nothing we send but must be presented to Twilio and checks its
    # callbacks' signatures, so it is encrypted, not hashed.
    auth_token_key_id = models.CharField(_("auth token key ID"), max_length=32, blank=True, editable=False)
    auth_token_blob = models.BinaryField(_("auth token (encrypted)"), null=True, editable=False)
    from_number = models.CharField(
        _("From number"), max_length=16, blank=True, help_text=_("E.164 number or alphanumeric sender id.")
    )
    messaging_service_sid = models.CharField(_("Messaging Service SID"), max_length=34, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("SMS provider")
        verbose_name_plural = _("SMS providers")
        constraints = [models.UniqueConstraint(fields=["issuer", "role"], name="sms_provider_one_per_role")]

    def __str__(self) -> str:
        return f"{self.get_backend_display()} ({self.role})"

    def _token_context(self) -> str:
        # Not the role: a row may move from primary to fallback and keep its token.
        return f"sms-provider-auth-token:{self.issuer_id}"

    def set_auth_token(self, token: str) -> None:
        sealed = seal(token, context=self._token_context())
        self.auth_token_key_id, self.auth_token_blob = sealed.key_id, sealed.blob

    def get_auth_token(self) -> str:
        if not self.auth_token_blob:
            return ""
        return unseal(Sealed(self.auth_token_key_id, bytes(self.auth_token_blob)), context=self._token_context())


class SmsDelivery(OutboundDelivery):
    """One logical SMS on the delivery engine (apps.delivery): a resend is a new delivery; each
    try to a provider is an SmsAttempt. `tries` counts the claims over both providers; each
    provider gets OUTBOUND_MAX_TRIES of them."""

    PENDING, CANCELLED = "pending", "cancelled"
    # Provider statuses (Twilio's words), in the order they can happen.
    QUEUED, SENDING, SENT = "queued", "sending", "sent"
    DELIVERED, UNDELIVERED, FAILED = "delivered", "undelivered", "failed"
    STATUSES = [
        (PENDING, pgettext_lazy("sms status", "pending")),
        (QUEUED, pgettext_lazy("sms status", "queued")),
        (SENDING, pgettext_lazy("sms status", "sending")),
        (SENT, pgettext_lazy("sms status", "sent")),
        (DELIVERED, pgettext_lazy("sms status", "delivered")),
        (UNDELIVERED, pgettext_lazy("sms status", "undelivered")),
        (FAILED, pgettext_lazy("sms status", "failed")),
        (CANCELLED, pgettext_lazy("sms status", "cancelled")),
    ]
    # A status only ever moves to a higher rank: a late "sent" never undoes "delivered".
    RANK = {PENDING: 0, QUEUED: 1, SENDING: 2, SENT: 3, DELIVERED: 4, UNDELIVERED: 4, FAILED: 4, CANCELLED: 4}
    FINAL = {DELIVERED, UNDELIVERED, FAILED, CANCELLED}

    # A UUID known before the INSERT: the body is sealed with it as associated data.
    id = models.UUIDField("ID", primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by sms_delivery_issuer_idx (issuer, -created_at): a single-column index would only
    # cost every write a third index entry.
    issuer = models.ForeignKey(
        "issuers.Issuer", on_delete=models.CASCADE, related_name="sms_deliveries", db_index=False, verbose_name=_("issuer")
    )
    otp_code = models.ForeignKey(
        "otp.OtpCode", null=True, blank=True, on_delete=models.SET_NULL, related_name="sms_deliveries",
        verbose_name=_("OTP code"),
    )
    acs_trans_id = models.UUIDField("acsTransID", null=True, blank=True, db_index=True)
    purpose = models.CharField(_("purpose"), max_length=20, default="otp")
    to = models.CharField(_("phone number (E.164)"), max_length=20, help_text="E.164")
    masked_to = models.CharField(_("to"), max_length=32)
    sender_id = models.CharField(_("sender ID"), max_length=16, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=STATUSES, default=PENDING)
    # Encrypted {"body", "secret"}; NULL once no provider will need it again.
    body_key_id = models.CharField(_("body key ID"), max_length=32, blank=True, editable=False)
    body_blob = models.BinaryField(_("body (encrypted)"), null=True, editable=False)
    provider = models.CharField(
        _("provider"), max_length=20, blank=True, help_text=_("role:backend that accepted the message")
    )
    # Found by equality only (sms_delivery_message_id_idx): no LIKE twin index.
    provider_message_id = models.CharField(_("provider's message ID"), max_length=64, blank=True)
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("SMS delivery")
        verbose_name_plural = _("SMS deliveries")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["issuer", "-created_at"], name="sms_delivery_issuer_idx"),
            models.Index(fields=["provider_message_id"], name="sms_delivery_message_id_idx"),
            # The clean-up scans only rows that still hold a body.
            models.Index(fields=["created_at"], condition=Q(body_blob__isnull=False), name="sms_delivery_with_body_idx"),
            # The delivery sweep reads only pending rows.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="sms_delivery_due_idx"),
        ]

    def __str__(self) -> str:
        return f"SMS to {self.masked_to} ({self.status})"

    def body_context(self) -> str:
        return f"sms:{self.pk}"

    def seal_body(self, plaintext: str) -> None:
        sealed = seal(plaintext, context=self.body_context())
        self.body_key_id, self.body_blob = sealed.key_id, sealed.blob

    def unseal_body(self) -> str | None:
        if not self.body_blob:
            return None
        return unseal(Sealed(self.body_key_id, bytes(self.body_blob)), context=self.body_context())


class SmsAttempt(OutboundAttempt):
    """One try with one provider, recorded before the call (claimed) and after it."""

    # Indexed by sms_attempt_try_uniq, which starts with it.
    delivery = models.ForeignKey(
        SmsDelivery, on_delete=models.CASCADE, related_name="attempts", db_index=False, verbose_name=_("delivery")
    )
    provider_role = models.CharField(_("provider role"), max_length=10, choices=ROLES)
    provider = models.CharField(_("provider"), max_length=10, choices=BACKENDS)
    account_sid = models.CharField(_("account SID"), max_length=34, blank=True)
    try_number = models.PositiveSmallIntegerField(_("try with this provider"), help_text=_("1, 2, … per provider role"))
    # Not indexed: a try is found by its callback token; the delivery carries the accepted id.
    # Without an index on it, recording the outcome can update the row in place (HOT).
    provider_message_id = models.CharField(_("provider's message ID"), max_length=64, blank=True)
    provider_status = models.CharField(_("provider's status"), max_length=20, blank=True)
    # In the status-callback URL: only the provider that got this try knows it. Unique through a
    # constraint, not unique=True, which on PostgreSQL adds a LIKE twin index nothing uses.
    callback_token = models.CharField(_("callback token"), max_length=64, editable=False)

    class Meta:
        verbose_name = _("SMS attempt")
        verbose_name_plural = _("SMS attempts")
        ordering = ["started_at", "id"]
        constraints = [
            # Two workers racing for the same try: the database lets only one claim it.
            models.UniqueConstraint(fields=["delivery", "provider_role", "try_number"], name="sms_attempt_try_uniq"),
            models.UniqueConstraint(fields=["callback_token"], name="sms_attempt_callback_token_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_role} try {self.try_number} ({self.state})"
