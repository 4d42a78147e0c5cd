import uuid
from types import SimpleNamespace

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

PROVIDER, ISSUER = "provider", "issuer"
DELIVERY_MODES = [(PROVIDER, _("Service sends the SMS (provider)")), (ISSUER, _("Issuer sends the SMS (DeliverOTP)"))]

TEMPLATE_PLACEHOLDERS = {"code", "merchant", "amount", "minutes"}
DEFAULT_TEMPLATES = {
    "en": "{code} is your verification code for {merchant} ({amount}). It expires in {minutes} min. Never share it.",
    "ja": "認証コード：{code}（{merchant}、{amount}）。有効期限は{minutes}分です。このコードを他人に教えないでください。",
    "fr": "{code} est votre code de vérification pour {merchant} ({amount}). Il expire dans {minutes} min. Ne le communiquez jamais.",
}

# (field, default, min, max): SPEC §3.5.
BOUNDS = {
    "code_length": (6, 6, 8),
    "lifetime_seconds": (300, 60, 600),
    "max_attempts": (3, 1, 10),
    "max_resends": (3, 0, 5),
    "resend_cooldown_seconds": (30, 0, 300),
    "max_sends_per_card_hour": (5, 1, 100),
    "max_sends_per_card_day": (10, 1, 1000),
    "max_sends_per_phone_day": (10, 1, 1000),
}


def _bounded(name: str, verbose_name, help_text: str):
    default, low, high = BOUNDS[name]
    return models.PositiveSmallIntegerField(verbose_name, default=default, help_text=f"{help_text} ({low}–{high}).")


def template_problems(text: str) -> list[str]:
    import string

    problems = []
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError:
        return [gettext("Unbalanced braces: a { or } is not paired.")]
    if "code" not in names:
        problems.append(gettext("Must contain {code}, where the code goes."))
    unknown = names - TEMPLATE_PLACEHOLDERS
    if unknown:
        problems.append(gettext("Unknown placeholders: %(names)s. Use {code}, {merchant}, {amount} or {minutes}.")
                        % {"names": ", ".join("{%s}" % n for n in sorted(unknown))})
    return problems


class OtpPolicy(models.Model):
    """OTP rules of an issuer (product empty) or of one card product (an override). Every save
    makes a new immutable OtpPolicyVersion; a challenge records the version it ran under."""

    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="otp_policies", verbose_name=_("issuer"))
    product = models.OneToOneField(
        "cards.CardProduct", null=True, blank=True, on_delete=models.CASCADE, related_name="otp_policy",
        verbose_name=_("card product"),
        help_text="Empty: the issuer's default policy. Set: an override for this card product.",
    )
    # The names are the policy form's labels (apps.otp.policy_words.LABELS).
    code_length = _bounded("code_length", _("Digits in the code"), "Digits in the code")
    lifetime_seconds = _bounded("lifetime_seconds", _("Seconds a code stays valid"), "Seconds a code stays valid")
    max_attempts = _bounded("max_attempts", _("Wrong codes allowed"), "Wrong codes before the challenge fails with reason 19")
    max_resends = _bounded("max_resends", _("Resends per challenge"), "Resends allowed per challenge")
    resend_cooldown_seconds = _bounded("resend_cooldown_seconds", _("Seconds between two sends"), "Seconds between two sends")
    max_sends_per_card_hour = _bounded("max_sends_per_card_hour", _("Codes per card in any hour"), "Codes sent per card in any hour")
    max_sends_per_card_day = _bounded(
        "max_sends_per_card_day", _("Codes per card in any 24 hours"), "Codes sent per card in any 24 hours"
    )
    max_sends_per_phone_day = _bounded(
        "max_sends_per_phone_day", _("Codes per phone number in any 24 hours"), "Codes sent per phone number in any 24 hours"
    )
    allowed_countries = models.JSONField(
        _("Countries SMS may go to"),
        default=list, blank=True, help_text='ISO 3166 alpha-2 codes SMS may go to, e.g. ["JP", "FR"]. Others are refused.'
    )
    sms_templates = models.JSONField(
        _("SMS text"),
        default=dict, blank=True, help_text='Per locale, e.g. {"en": "{code} is your code for {merchant}"}. Placeholders: {code} {merchant} {amount} {minutes}.'
    )
    sender_ids = models.JSONField(
        _("Sender per destination country"),
        default=dict, blank=True, help_text='Sender per destination country, e.g. {"JP": "+815012345678", "FR": "MYBANK", "default": "..."}.'
    )
    delivery_mode = models.CharField(_("Who sends the SMS"), max_length=10, choices=DELIVERY_MODES, default=PROVIDER)
    version = models.PositiveIntegerField(pgettext_lazy("policy", "version"), default=0, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.CharField(_("updated by"), max_length=150, blank=True, editable=False)

    class Meta:
        verbose_name = _("OTP policy")
        verbose_name_plural = _("OTP policies")
        constraints = [
            models.UniqueConstraint(fields=["issuer"], condition=Q(product__isnull=True), name="otp_policy_one_default_per_issuer"),
        ]

    def __str__(self) -> str:
        scope = f"product {self.product}" if self.product_id else "default"
        return f"OTP policy ({scope}) v{self.version}"

    def clean(self):
        errors: dict[str, list[str]] = {}
        for name, (_default, low, high) in BOUNDS.items():
            value = getattr(self, name)
            if value is None or not low <= value <= high:
                errors.setdefault(name, []).append(gettext("Must be between %(low)s and %(high)s.") % {"low": low, "high": high})
        countries = self.allowed_countries
        if not isinstance(countries, list) or not all(isinstance(c, str) and len(c) == 2 and c.isalpha() and c.isupper() for c in countries):
            errors.setdefault("allowed_countries", []).append('A list of upper-case ISO 3166 alpha-2 codes, e.g. ["JP"].')
        templates = self.sms_templates
        if not isinstance(templates, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in templates.items()):
            errors.setdefault("sms_templates", []).append('An object of locale → text, e.g. {"en": "{code} ..."}.')
        else:
            for locale, text in templates.items():
                for problem in template_problems(text):
                    errors.setdefault("sms_templates", []).append(f"{locale}: {problem}")
                if len(text) > 320:
                    errors.setdefault("sms_templates", []).append(f"{locale}: " + gettext("longer than 320 characters."))
        senders = self.sender_ids
        if not isinstance(senders, dict) or not all(isinstance(k, str) and isinstance(v, str) and 0 < len(v) <= 16 for k, v in senders.items()):
            errors.setdefault("sender_ids", []).append('An object of country → sender (a number or up to 11 letters/digits).')
        if self.product_id and self.product.issuer_id != self.issuer_id:
            errors.setdefault("product", []).append(gettext("The product belongs to another issuer."))
        if errors:
            raise ValidationError(errors)

    def snapshot(self) -> dict:
        return {
            **{name: getattr(self, name) for name in BOUNDS},
            "allowed_countries": list(self.allowed_countries),
            "sms_templates": dict(self.sms_templates),
            "sender_ids": dict(self.sender_ids),
            "delivery_mode": self.delivery_mode,
        }


class OtpPolicyVersion(models.Model):
    policy = models.ForeignKey(OtpPolicy, on_delete=models.PROTECT, related_name="versions", verbose_name=_("policy"))
    version = models.PositiveIntegerField(pgettext_lazy("policy", "version"))
    settings = models.JSONField(_("settings"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    reason = models.TextField(_("reason"), blank=True, help_text="Why it changed, as its author said.")

    class Meta:
        verbose_name = _("OTP policy version")
        verbose_name_plural = _("OTP policy versions")
        ordering = ["policy", "-version"]
        constraints = [models.UniqueConstraint(fields=["policy", "version"], name="otp_policy_version_uniq")]

    def __str__(self) -> str:
        return f"{self.policy} — version {self.version}"

    @property
    def rules(self) -> SimpleNamespace:
        """The frozen settings as attributes: version.rules.max_attempts."""
        return SimpleNamespace(**self.settings)


class OtpSession(models.Model):
    """The OTP side of one challenge: attempts and resends are counted here, under a row lock."""

    ACTIVE, VERIFIED, LOCKED, EXPIRED, CANCELLED = "active", "verified", "locked", "expired", "cancelled"
    STATES = [
        (ACTIVE, pgettext_lazy("otp session state", "active")),
        (VERIFIED, pgettext_lazy("otp session state", "verified")),
        (LOCKED, pgettext_lazy("otp session state", "locked")),
        (EXPIRED, pgettext_lazy("otp session state", "expired")),
        (CANCELLED, pgettext_lazy("otp session state", "cancelled")),
    ]

    id = models.UUIDField("ID", primary_key=True, default=uuid.uuid4, editable=False)
    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="otp_sessions", verbose_name=_("issuer"))
    card = models.ForeignKey(
        "cards.Card", null=True, on_delete=models.SET_NULL, related_name="otp_sessions", verbose_name=_("card")
    )
    phone = models.ForeignKey(
        "cards.Phone", null=True, on_delete=models.SET_NULL, related_name="otp_sessions", verbose_name=_("registered phone")
    )
    # Kept for limits and reports even if the phone row is removed later.
    phone_e164 = models.CharField(_("phone number (E.164)"), max_length=20)
    masked_phone = models.CharField(_("phone"), max_length=32)
    acs_trans_id = models.UUIDField("acsTransID", null=True, blank=True, db_index=True)
    policy_version = models.ForeignKey(
        OtpPolicyVersion, on_delete=models.PROTECT, related_name="sessions", verbose_name=_("policy version")
    )
    locale = models.CharField(_("language"), max_length=5, default="en")
    # What the SMS or DeliverOTP needs to word the message: merchantName, purchaseAmount, ...
    transaction_details = models.JSONField(_("transaction details"), default=dict, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=STATES, default=ACTIVE)
    attempts_used = models.PositiveSmallIntegerField(_("wrong codes"), default=0)
    resends_used = models.PositiveSmallIntegerField(_("resends"), default=0)
    last_sent_at = models.DateTimeField(_("last sent"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("OTP session")
        verbose_name_plural = _("OTP sessions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"OTP session {self.pk} ({self.state})"


class OtpCode(models.Model):
    """One issued code. Only a keyed hash is stored; the code itself exists only in memory and,
    until delivered, encrypted inside the SMS or DeliverOTP delivery that carries it."""

    ACTIVE, USED, SUPERSEDED, EXPIRED, DEAD = "active", "used", "superseded", "expired", "dead"
    STATES = [
        (ACTIVE, pgettext_lazy("otp code state", "active")),
        (USED, pgettext_lazy("otp code state", "used")),
        (SUPERSEDED, pgettext_lazy("otp code state", "superseded")),
        (EXPIRED, pgettext_lazy("otp code state", "expired")),
        (DEAD, pgettext_lazy("otp code state", "dead")),
    ]

    id = models.UUIDField("ID", primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(OtpSession, on_delete=models.CASCADE, related_name="codes", verbose_name=_("OTP session"))
    code_hash = models.CharField(_("code hash"), max_length=64, editable=False)
    state = models.CharField(_("state"), max_length=10, choices=STATES, default=ACTIVE)
    delivery_mode = models.CharField(_("Who sends the SMS"), max_length=10, choices=DELIVERY_MODES)
    # For velocity limits, counted from these rows whatever the delivery mode.
    card = models.ForeignKey("cards.Card", null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("card"))
    phone_e164 = models.CharField(_("phone number (E.164)"), max_length=20, db_index=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(_("expires"))

    class Meta:
        verbose_name = _("OTP code")
        verbose_name_plural = _("OTP codes")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["session"], condition=Q(state="active"), name="otp_one_active_code_per_session"),
        ]
        indexes = [models.Index(fields=["card", "created_at"], name="otp_code_card_created_idx")]

    def __str__(self) -> str:
        return f"OTP code {self.pk} ({self.state})"


class OtpRefusal(models.Model):
    """A send the rules refused (country not allowed, velocity): kept for analysts, never the code."""

    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="+", verbose_name=_("issuer"))
    session = models.ForeignKey(
        OtpSession, null=True, on_delete=models.CASCADE, related_name="refusals", verbose_name=_("OTP session")
    )
    card = models.ForeignKey("cards.Card", null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("card"))
    phone_e164 = models.CharField(_("phone number (E.164)"), max_length=20)
    reason = models.CharField(_("reason"), max_length=40)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("refused SMS")
        verbose_name_plural = _("refused SMS")
        ordering = ["-created_at"]


class OtpNumberLock(models.Model):
    """One row per destination number, locked (SELECT ... FOR UPDATE) by every send to that number
    while it counts and records the send, so the per-number daily limit holds however many
    cardholders share the number. The key is a keyed hash: the table never holds the number.
    The lock is taken by an upsert that writes `locked_at` (see services._lock_number)."""

    key = models.CharField(_("number key (hash)"), max_length=64, primary_key=True)
    locked_at = models.DateTimeField(_("locked"), null=True, blank=True, help_text="When a send last took this lock.")

    class Meta:
        verbose_name = _("OTP number lock")
        verbose_name_plural = _("OTP number locks")
