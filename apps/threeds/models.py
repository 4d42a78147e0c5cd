"""EMV 3-D Secure transactions: the AReq as it matters to the ACS, the decision, the challenge and
the result. Field names follow the EMV spec (snake_case of its camelCase) so they stay findable."""

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.core.pan import NETWORK_CHOICES
from apps.delivery.models import OutboundAttempt, OutboundDelivery

NO_METHOD_OUTCOMES = [("N", _("Decline (N / 13)")), ("A", _("Attempt (A)"))]


class RiskPolicy(models.Model):
    """An issuer's rules for frictionless versus challenge. Scores add up (clamped 0–99); a
    transaction is challenged when its score reaches the threshold or a mandate applies."""

    issuer = models.OneToOneField("issuers.Issuer", verbose_name=_("issuer"), on_delete=models.CASCADE, related_name="risk_policy")
    base_score = models.PositiveSmallIntegerField(verbose_name=_("base score"), default=10)
    challenge_threshold = models.PositiveSmallIntegerField(
        verbose_name=_("challenge threshold"), default=50, help_text="Score at or above which a challenge is required.")
    # Amount thresholds per ISO 4217 numeric currency, in major units: {"392": "30000", "978": "250.00"}.
    amount_thresholds = models.JSONField(
        verbose_name=_("amount thresholds"), default=dict, blank=True, help_text='Above this amount: +amount_weight. {"978": "250.00"}')
    amount_weight = models.PositiveSmallIntegerField(verbose_name=_("amount weight"), default=60)
    tra_max_amounts = models.JSONField(
        verbose_name=_("low-risk (TRA) exemption up to"), default=dict, blank=True,
        help_text='Indicator 05 (TRA) may go frictionless up to: {"978": "100.00"}')
    sca_performed_max_amounts = models.JSONField(
        verbose_name=_("SCA already performed: frictionless up to"), default=dict, blank=True,
        help_text='Indicator 07 may go frictionless up to: {"978": "500.00"}')
    exemption_credit = models.PositiveSmallIntegerField(
        verbose_name=_("exemption credit"), default=50, help_text="Score taken off for an accepted 05/07 exemption.")
    requestor_prefers_challenge_weight = models.PositiveSmallIntegerField(
        verbose_name=_("challenge preference weight"), default=50, help_text="Indicator 03.")
    velocity_max_per_hour = models.PositiveSmallIntegerField(
        verbose_name=_("authentications per hour before declining"), default=10,
        help_text="Authentications per card per hour; more are declined (N / 04).")
    velocity_warn_per_hour = models.PositiveSmallIntegerField(
        verbose_name=_("authentications per hour that add weight"), default=4, help_text="From this many in the hour: +velocity_weight.")
    velocity_weight = models.PositiveSmallIntegerField(verbose_name=_("velocity weight"), default=30)
    new_merchant_weight = models.PositiveSmallIntegerField(
        verbose_name=_("new merchant weight"), default=30, help_text="First authentication of the card at this merchant.")
    non_payment_weight = models.PositiveSmallIntegerField(verbose_name=_("non-payment weight"), default=40, help_text="messageCategory 02.")
    # 3DS Method (SPEC §3.8). 0 by default: a policy weighs these only once an issuer chooses to.
    three_ds_method_missing_weight = models.PositiveSmallIntegerField(
        verbose_name=_("3DS Method missing weight"), default=0,
        help_text="Browser AReq with threeDSCompInd Y but no 3DS Method data received.")
    browser_data_mismatch_weight = models.PositiveSmallIntegerField(
        verbose_name=_("browser data mismatch weight"), default=0,
        help_text="The 3DS Method's browser data disagree with the AReq's (screen, time zone, language).")
    no_method_outcome = models.CharField(
        verbose_name=_("outcome without a challenge method"), max_length=1, choices=NO_METHOD_OUTCOMES, default="N")
    allow_oob = models.BooleanField(verbose_name=_("app (OOB) challenge allowed"), default=True)
    allow_fallback_to_sms = models.BooleanField(verbose_name=_("fallback to SMS allowed"), default=True)
    first_creq_timeout_seconds = models.PositiveSmallIntegerField(verbose_name=_("first CReq timeout (seconds)"), default=30)
    challenge_timeout_seconds = models.PositiveSmallIntegerField(verbose_name=_("challenge timeout (seconds)"), default=600)
    oob_timeout_seconds = models.PositiveSmallIntegerField(verbose_name=_("app (OOB) timeout (seconds)"), default=120)
    updated_at = models.DateTimeField(verbose_name=_("updated"), auto_now=True)
    # The number of the latest RiskPolicyVersion; bumped under this row's lock (risk_policy_save).
    version = models.PositiveIntegerField(verbose_name=_("version"), default=0, editable=False)

    class Meta:
        verbose_name = _("risk policy")
        verbose_name_plural = _("risk policies")

    def __str__(self) -> str:
        return f"Risk policy of {self.issuer}"

    def clean(self):
        errors = {}
        if not 1 <= self.challenge_threshold <= 99:
            errors["challenge_threshold"] = _("Between 1 and 99.")
        for name in ("amount_thresholds", "tra_max_amounts", "sca_performed_max_amounts"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and len(k) == 3 and k.isdigit() and isinstance(v, str) and _is_amount(v) for k, v in value.items()
            ):
                errors[name] = _("Each entry needs a currency and an amount of zero or more.")
        if not 5 <= self.first_creq_timeout_seconds <= 600:
            errors["first_creq_timeout_seconds"] = _("Between 5 and 600.")
        if not 60 <= self.challenge_timeout_seconds <= 1800:
            errors["challenge_timeout_seconds"] = _("Between 60 and 1800.")
        if not 10 <= self.oob_timeout_seconds <= 600:
            errors["oob_timeout_seconds"] = _("Between 10 and 600.")
        if self.velocity_warn_per_hour > self.velocity_max_per_hour:
            errors["velocity_warn_per_hour"] = _("At most the number of authentications per hour before declining.")
        if errors:
            raise ValidationError(errors)


    def snapshot(self) -> dict:
        """The policy's values, as a version freezes them (everything but ids and timestamps)."""
        return {f.attname: getattr(self, f.attname) for f in self._meta.concrete_fields
                if f.name not in ("id", "issuer", "updated_at", "version")}


class RiskPolicyVersion(models.Model):
    """One saved state of a risk policy: who changed it, when and why. Never edited."""

    policy = models.ForeignKey(RiskPolicy, verbose_name=_("risk policy"), on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField(verbose_name=_("version"))
    settings = models.JSONField(verbose_name=_("settings"))
    reason = models.TextField(verbose_name=_("reason"), blank=True)
    created_by = models.CharField(verbose_name=_("changed by"), max_length=150, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("risk policy version")
        verbose_name_plural = _("risk policy versions")
        ordering = ["policy", "-version"]
        constraints = [models.UniqueConstraint(fields=["policy", "version"], name="threeds_risk_policy_version_uniq")]

    def __str__(self) -> str:
        return f"{self.policy} — version {self.version}"


def _is_amount(value: str) -> bool:
    from decimal import Decimal, InvalidOperation

    try:
        return Decimal(value) >= 0
    except (InvalidOperation, ValueError):
        return False


class Transaction(models.Model):
    """One 3-D Secure authentication, keyed by acsTransID. Never holds the PAN in clear."""

    DEVICE_APP, DEVICE_BROWSER, DEVICE_3RI = "01", "02", "03"

    acs_trans_id = models.UUIDField(verbose_name="acsTransID", primary_key=True, default=uuid.uuid4, editable=False)
    # Null when the PAN matched no issuer of this service (the ARes still says N / 08).
    # No single-column indexes on the two foreign keys: the composite indexes below start with
    # them (every AReq writes each index; see docs/BENCHMARKS-3DS.md).
    issuer = models.ForeignKey(
        "issuers.Issuer", verbose_name=_("issuer"), null=True, on_delete=models.PROTECT, related_name="transactions", db_index=False)
    card = models.ForeignKey(
        "cards.Card", verbose_name=_("card"), null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions", db_index=False)
    three_ds_server_trans_id = models.UUIDField(verbose_name="threeDSServerTransID")
    ds_trans_id = models.UUIDField(verbose_name="dsTransID")
    sdk_trans_id = models.UUIDField(verbose_name="sdkTransID", null=True, blank=True)
    message_version = models.CharField(verbose_name=_("message version"), max_length=8)
    device_channel = models.CharField(verbose_name=_("channel"), max_length=2)
    message_category = models.CharField(verbose_name=_("category"), max_length=2)
    pan_last4 = models.CharField(verbose_name=_("card last 4"), max_length=4)
    # Not indexed: nothing looks a transaction up by it (the verification API finds it by dsTransID).
    pan_fingerprint = models.CharField(verbose_name=_("card number fingerprint"), max_length=64)
    network = models.CharField(verbose_name=_("network"), max_length=20, blank=True)
    co_badge = models.CharField(verbose_name=_("co-badged network"), max_length=20, blank=True)
    purchase_amount = models.BigIntegerField(verbose_name=_("purchase amount"), null=True, blank=True)
    purchase_currency = models.CharField(verbose_name=_("purchase currency"), max_length=3, blank=True)
    purchase_exponent = models.PositiveSmallIntegerField(verbose_name=_("currency exponent"), null=True, blank=True)
    purchase_date = models.CharField(verbose_name=_("purchase date"), max_length=14, blank=True)
    merchant_name = models.CharField(verbose_name=_("merchant name"), max_length=40, blank=True)
    acquirer_merchant_id = models.CharField(verbose_name=_("acquirer merchant ID"), max_length=35, blank=True)
    acquirer_bin = models.CharField(verbose_name=_("acquirer BIN"), max_length=11, blank=True)
    mcc = models.CharField(verbose_name=_("merchant category code (MCC)"), max_length=4, blank=True)
    merchant_country_code = models.CharField(verbose_name=_("merchant country"), max_length=3, blank=True)
    three_ds_requestor_challenge_ind = models.CharField(verbose_name=_("challenge indicator"), max_length=2, blank=True)
    # SPEC §3.8, browser channel only (blank otherwise): see apps.threeds.method.
    three_ds_method = models.CharField(verbose_name=_("3DS Method outcome"), max_length=16, blank=True, choices=[
        ("completed", pgettext_lazy("3DS Method", "completed")), ("missing", pgettext_lazy("3DS Method", "missing")),
        ("not_completed", pgettext_lazy("3DS Method", "not completed")), ("unavailable", pgettext_lazy("3DS Method", "unavailable"))])
    notification_url = models.URLField(verbose_name=_("notification URL"), max_length=2048, blank=True)
    ds_url = models.URLField(verbose_name=_("DS URL"), max_length=2048, blank=True)
    three_ds_requestor_app_url = models.URLField(verbose_name=_("requestor app URL"), max_length=2048, blank=True)
    # The AReq as received, with acctNumber (and anything else sensitive) removed.
    areq = models.JSONField(verbose_name=_("AReq as received"), default=dict)
    ares = models.JSONField(verbose_name=_("ARes as sent"), default=dict)

    # Decision
    risk_score = models.PositiveSmallIntegerField(verbose_name=_("risk score"), null=True, blank=True)
    risk_rules = models.JSONField(
        verbose_name=_("rules that fired"), default=list, blank=True, help_text="Which rules fired, with their weights.")
    # The facts the decision weighed that no column keeps (velocity count, new merchant, 3DS Method
    # mismatches), as they were then: the backtest replays a draft policy over them.
    risk_facts = models.JSONField(verbose_name=_("facts weighed"), default=dict, blank=True)
    ares_trans_status = models.CharField(verbose_name=_("ARes result"), max_length=1, blank=True)
    exemption = models.CharField(
        verbose_name=_("exemption"), max_length=20, blank=True, help_text=_("low_risk when a TRA/SCA exemption was granted."))

    # Result
    trans_status = models.CharField(verbose_name=_("result"), max_length=1, blank=True)  # filtered per issuer: threeds_tx_status_keyset_idx
    trans_status_reason = models.CharField(verbose_name=_("reason"), max_length=2, blank=True)
    eci = models.CharField(verbose_name="ECI", max_length=2, blank=True)
    authentication_value = models.CharField(verbose_name=_("authentication value"), max_length=28, blank=True)
    authentication_value_key_id = models.CharField(verbose_name=_("authentication value key ID"), max_length=32, blank=True)
    authentication_type = models.CharField(verbose_name=_("authentication type"), max_length=2, blank=True)
    challenge_cancel = models.CharField(verbose_name=_("challenge cancellation"), max_length=2, blank=True)
    interaction_counter = models.PositiveSmallIntegerField(verbose_name=_("interaction count"), default=0)

    created_at = models.DateTimeField(verbose_name=_("created"), auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(verbose_name=_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        ordering = ["-created_at"]
        constraints = [
            # A duplicate AReq finds the first transaction instead of starting a second one.
            models.UniqueConstraint(fields=["three_ds_server_trans_id", "ds_trans_id"], name="threeds_areq_ids_uniq"),
        ]
        indexes = [
            # The analyst list's keyset order (newest first, ties broken by acsTransID) within an
            # issuer; also every per-issuer time range (API list, dashboards). The two status
            # columns at the end let the dashboards count from the index alone (index-only scan).
            models.Index(
                fields=["issuer", "-created_at", "-acs_trans_id", "ares_trans_status", "trans_status"],
                name="threeds_tx_issuer_keyset_idx",
            ),
            models.Index(fields=["card", "created_at"], name="threeds_tx_card_created_idx"),
            # Analyst filters by equality, each kept in the keyset order: a page reads ~50 entries.
            models.Index(fields=["issuer", "trans_status", "-created_at", "-acs_trans_id"], name="threeds_tx_status_keyset_idx"),
            models.Index(fields=["issuer", "pan_last4", "-created_at", "-acs_trans_id"], name="threeds_tx_last4_keyset_idx"),
            # Challenged transactions only (about a quarter): the method and fallback filters walk
            # it in keyset order and look each challenge up by its primary key.
            models.Index(
                fields=["issuer", "-created_at", "-acs_trans_id"], condition=models.Q(ares_trans_status__in=["C", "D"]),
                name="threeds_tx_challenged_idx",
            ),
            models.Index(fields=["ds_trans_id"], name="threeds_tx_ds_trans_id_idx"),
            models.Index(fields=["issuer", "purchase_currency", "purchase_amount"], name="threeds_tx_amount_idx"),
            # PostgreSQL only, created by migration 0004_analyst_indexes (no portable form): a GIN
            # trigram index on UPPER(merchant_name) for the case-insensitive merchant search.
        ]

    def __str__(self) -> str:
        return f"{self.acs_trans_id} {self.trans_status or self.ares_trans_status}"


class Challenge(models.Model):
    """The challenge of a transaction whose ARes said C."""

    OOB, SMS_OTP = "oob", "sms_otp"
    METHODS = [(OOB, _("Out of band (app)")), (SMS_OTP, _("SMS one-time password"))]
    AWAITING_CREQ, IN_PROGRESS, SUCCEEDED, FAILED, CANCELLED, TIMED_OUT = (
        "awaiting_creq", "in_progress", "succeeded", "failed", "cancelled", "timed_out",
    )
    STATES = [
        (AWAITING_CREQ, pgettext_lazy("challenge state", "awaiting_creq")),
        (IN_PROGRESS, pgettext_lazy("challenge state", "in_progress")),
        (SUCCEEDED, pgettext_lazy("challenge state", "succeeded")),
        (FAILED, pgettext_lazy("challenge state", "failed")),
        (CANCELLED, pgettext_lazy("challenge state", "cancelled")),
        (TIMED_OUT, pgettext_lazy("challenge state", "timed_out")),
    ]
    FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED, TIMED_OUT)

    transaction = models.OneToOneField(
        Transaction, verbose_name=_("transaction"), on_delete=models.CASCADE, related_name="challenge", primary_key=True)
    method = models.CharField(verbose_name=_("method"), max_length=10, choices=METHODS)
    state = models.CharField(verbose_name=_("state"), max_length=16, choices=STATES, default=AWAITING_CREQ, db_index=True)
    fallback_reason = models.CharField(verbose_name=_("fallback reason"), max_length=32, blank=True)
    # Decoupled authentication (SPEC §3.9, ARes D): an OOB challenge started at the AReq, with no
    # CReq and no fallback to SMS; its deadlines are threeDSRequestorDecMaxTime.
    decoupled = models.BooleanField(verbose_name=_("decoupled"), default=False)
    otp_session = models.OneToOneField(
        "otp.OtpSession", verbose_name=_("one-time password session"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="challenge")
    phone = models.ForeignKey("cards.Phone", verbose_name=_("phone"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    locale = models.CharField(verbose_name=_("language"), max_length=5, default="en")
    challenge_window_size = models.CharField(verbose_name=_("challenge window size"), max_length=2, blank=True)
    three_ds_session_data = models.TextField(verbose_name="threeDSSessionData", blank=True)
    # App channel: the SDK's counter we expect next, and ours.
    sdk_counter_expected = models.PositiveSmallIntegerField(verbose_name=_("expected SDK counter"), default=0)
    acs_counter = models.PositiveSmallIntegerField(verbose_name=_("ACS counter"), default=0)
    # App channel: the EMV session key (SPEC §3.3.2), sealed with apps.core.crypto and bound to
    # the acsTransID (app_crypto.session_key_seal); wiped (NULL) once the SDK has been told the
    # result. The ACS's ephemeral private key is not kept: the session key is all a CReq needs.
    app_session_key_id = models.CharField(verbose_name=_("session key ID"), max_length=32, blank=True, editable=False)
    app_session_key_blob = models.BinaryField(verbose_name=_("sealed session key"), null=True, editable=False)
    # Binds the browser page to this transaction: a form token the page must post back.
    page_token_hash = models.CharField(verbose_name=_("page token hash"), max_length=64, blank=True)
    first_creq_deadline = models.DateTimeField(verbose_name=_("first CReq deadline"))
    deadline = models.DateTimeField(verbose_name=_("deadline"))
    oob_deadline = models.DateTimeField(verbose_name=_("app (OOB) deadline"), null=True, blank=True)
    creq_received_at = models.DateTimeField(verbose_name=_("first CReq received"), null=True, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(verbose_name=_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("challenge")
        verbose_name_plural = _("challenges")
        indexes = [
            models.Index(fields=["state", "deadline"], name="threeds_challenge_due_idx"),
            # The few challenges that fell back from OOB to SMS (analyst filter by reason).
            models.Index(fields=["fallback_reason"], condition=models.Q(fallback_reason__gt=""), name="threeds_ch_fallback_idx"),
            # Dashboards: the challenges of a period, without reading the whole table.
            models.Index(fields=["created_at"], name="threeds_ch_created_idx"),
            # The few ended challenges still holding an app session key (the sweep that wipes them).
            models.Index(fields=["finished_at"], condition=models.Q(app_session_key_blob__isnull=False),
                         name="threeds_ch_session_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.method} challenge of {self.transaction_id} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES


class AcsSigningKey(models.Model):
    """The ACS's signing credentials for one card network (SPEC §3.3.3, §5.7): the private key
    that signs acsSignedContent, sealed at rest like every other secret, and its certificate chain
    (PEM, leaf first) that goes into the JWS's x5c. One active key per network; installing a new
    one retires the old. Installed with `manage.py acs_signing_key`; the key is never shown."""

    id = models.UUIDField(verbose_name="ID", primary_key=True, default=uuid.uuid4, editable=False)
    network = models.CharField(verbose_name=_("network"), max_length=20, choices=NETWORK_CHOICES)
    key_key_id = models.CharField(verbose_name=_("sealing key ID"), max_length=32, editable=False)
    key_blob = models.BinaryField(verbose_name=_("sealed private key"), editable=False)
    chain_pem = models.TextField(verbose_name=_("certificate chain (PEM)"), help_text="Certificate chain, PEM, leaf first.")
    active = models.BooleanField(verbose_name=_("active"), default=True)
    created_at = models.DateTimeField(verbose_name=_("created"), auto_now_add=True)

    class Meta:
        ordering = ["network", "-created_at"]
        verbose_name = _("ACS signing key")
        verbose_name_plural = _("ACS signing keys")
        constraints = [
            models.UniqueConstraint(fields=["network"], condition=models.Q(active=True), name="threeds_signing_key_active_uniq"),
        ]

    def __str__(self) -> str:
        return f"ACS signing key for {self.network} ({'active' if self.active else 'retired'})"

    def key_context(self) -> str:
        return f"acs-signing-key:{self.id}"

    def set_private_key_pem(self, pem: str) -> None:
        from apps.core.crypto import seal

        sealed = seal(pem, context=self.key_context())
        self.key_key_id, self.key_blob = sealed.key_id, sealed.blob

    def private_key(self):
        from cryptography.hazmat.primitives import serialization

        from apps.core.crypto import Sealed, unseal

        pem = unseal(Sealed(self.key_key_id, bytes(self.key_blob)), context=self.key_context())
        return serialization.load_pem_private_key(pem.encode(), password=None)

    def chain(self) -> list:
        from cryptography import x509

        return x509.load_pem_x509_certificates(self.chain_pem.encode())


# ---- RReq delivery (outbound to the DS)


class RReqDelivery(OutboundDelivery):
    """The RReq of one challenged transaction to the DS (SPEC §3.6), on the delivery engine
    (apps.delivery): one row per transaction, one RReqAttempt per try; a try in flight is a pending
    delivery holding a lease. The message is built once, when the result is recorded, and every
    try sends exactly it. It carries no PAN."""

    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
    STATUSES = [(PENDING, _("Pending")), (SUCCEEDED, _("Succeeded")), (FAILED, _("Failed"))]
    TERMINAL = (SUCCEEDED, FAILED)

    transaction = models.OneToOneField(Transaction, verbose_name=_("transaction"), on_delete=models.CASCADE, related_name="rreq_delivery")
    issuer = models.ForeignKey("issuers.Issuer", verbose_name=_("issuer"), on_delete=models.CASCADE, related_name="rreq_deliveries")
    url = models.CharField(verbose_name=_("DS URL"), max_length=2048)
    message = models.JSONField(verbose_name=_("RReq as sent"), help_text="The RReq as sent.")
    status = models.CharField(verbose_name=_("status"), max_length=10, choices=STATUSES, default=PENDING)
    results_status = models.CharField(verbose_name="resultsStatus", max_length=2, blank=True, help_text=_("resultsStatus of the last RRes."))
    last_error = models.CharField(verbose_name=_("last error"), max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("RReq delivery")
        verbose_name_plural = _("RReq deliveries")
        indexes = [
            models.Index(fields=["issuer", "-created_at"], name="threeds_rreq_issuer_idx"),
            # The delivery sweep: pending and due.
            models.Index(fields=["status", "next_attempt_at"], name="threeds_rreq_status_due_idx"),
        ]

    def __str__(self) -> str:
        return f"RReq of {self.transaction_id} ({self.status})"


class RReqAttempt(OutboundAttempt):
    delivery = models.ForeignKey(RReqDelivery, verbose_name=_("RReq delivery"), on_delete=models.CASCADE, related_name="attempts")
    results_status = models.CharField(verbose_name="resultsStatus", max_length=2, blank=True)
    error_class = models.CharField(verbose_name=_("error class"), max_length=100, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        verbose_name = _("RReq attempt")
        verbose_name_plural = _("RReq attempts")
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="threeds_rreq_attempt_number_uniq")]

    def __str__(self) -> str:
        return f"try {self.number} of RReq {self.delivery_id}"


class ThreeDSMethodData(models.Model):
    """What the 3DS Method page collected in the cardholder's browser (SPEC §3.8), kept
    METHOD_DATA_TTL (10 minutes) for the AReq with the same threeDSServerTransID, which reads it
    in its one statement (apps.threeds.areq_store.read_card). Swept by the challenge timeouts task."""

    three_ds_server_trans_id = models.UUIDField(verbose_name="threeDSServerTransID", unique=True)  # the unique index is the AReq's look-up
    data = models.JSONField(verbose_name=_("browser data"), default=dict)
    created_at = models.DateTimeField(verbose_name=_("created"), auto_now_add=True, db_index=True)  # the sweep's range

    class Meta:
        verbose_name = _("3DS Method data")
        verbose_name_plural = _("3DS Method data")

    def __str__(self) -> str:
        return str(self.three_ds_server_trans_id)
