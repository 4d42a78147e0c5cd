import uuid

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from phonenumber_field.modelfields import PhoneNumberField

from apps.core.crypto import Sealed, unseal
from apps.core.pan import CARTES_BANCAIRES, MASTERCARD, NETWORK_CHOICES, VISA, mask_pan

LOCALE_CHOICES = [("en", _("English")), ("ja", _("Japanese")), ("fr", _("French"))]

card_id_validator = RegexValidator(r"^[A-Za-z0-9_-]{1,48}$", "1 to 48 letters, digits, '_' or '-'.")


class CardProduct(models.Model):
    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    PRODUCT_NETWORKS = [(VISA, "Visa"), (MASTERCARD, "Mastercard"), (CARTES_BANCAIRES, "Cartes Bancaires")]
    CO_BADGES = [(VISA, "Visa"), (MASTERCARD, "Mastercard")]

    issuer = models.ForeignKey(
        "issuers.Issuer", on_delete=models.CASCADE, related_name="card_products", verbose_name=_("issuer")
    )
    name = models.CharField(pgettext_lazy("card product", "name"), max_length=100)
    network = models.CharField(_("network"), max_length=20, choices=PRODUCT_NETWORKS)
    co_badge = models.CharField(
        _("co-badge"), max_length=20, choices=CO_BADGES, blank=True,
        help_text=_("Required for Cartes Bancaires: the co-badged network."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("card product")
        verbose_name_plural = _("card products")
        constraints = [
            models.UniqueConstraint(fields=["issuer", "name"], name="card_product_issuer_name_uniq"),
            models.CheckConstraint(
                condition=(Q(network=CARTES_BANCAIRES) & ~Q(co_badge="")) | (~Q(network=CARTES_BANCAIRES) & Q(co_badge="")),
                name="card_product_co_badge_only_for_cb",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BinRange(models.Model):
    """Inclusive range of PAN prefixes of one length: a PAN is in it when its first
    len(start) digits, as a number, lie between start and end."""

    product = models.ForeignKey(
        CardProduct, on_delete=models.CASCADE, related_name="bin_ranges", verbose_name=_("card product")
    )
    start = models.CharField(_("start"), max_length=19)
    end = models.CharField(_("end"), max_length=19)

    class Meta:
        ordering = ["start"]
        verbose_name = _("BIN range")
        verbose_name_plural = _("BIN ranges")

    def __str__(self) -> str:
        return f"{self.start}–{self.end}"

    def contains(self, pan: str) -> bool:
        prefix = pan[: len(self.start)]
        return len(prefix) == len(self.start) and int(self.start) <= int(prefix) <= int(self.end)


class Cardholder(models.Model):
    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="cardholders", verbose_name=_("issuer"))
    external_id = models.CharField(_("external ID"), max_length=64, help_text=_("The issuer's consumer id."))
    name = models.CharField(pgettext_lazy("cardholder", "name"), max_length=120)
    locale = models.CharField(_("language"), max_length=5, choices=LOCALE_CHOICES, default="en")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["external_id"]
        verbose_name = _("cardholder")
        verbose_name_plural = _("cardholders")
        constraints = [models.UniqueConstraint(fields=["issuer", "external_id"], name="cardholder_issuer_external_uniq")]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class Phone(models.Model):
    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    cardholder = models.ForeignKey(Cardholder, on_delete=models.CASCADE, related_name="phones", verbose_name=_("cardholder"))
    number = PhoneNumberField(_("phone number"))
    is_primary = models.BooleanField(_("primary"), default=False)
    verified = models.BooleanField(_("verified"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "created_at"]
        verbose_name = _("phone")
        verbose_name_plural = _("phones")
        constraints = [
            models.UniqueConstraint(fields=["cardholder", "number"], name="phone_cardholder_number_uniq"),
            models.UniqueConstraint(
                fields=["cardholder"], condition=Q(is_primary=True), name="phone_one_primary_per_cardholder"
            ),
        ]

    def __str__(self) -> str:
        return self.masked

    @property
    def masked(self) -> str:
        """+81 ••• •••• 1234: country code and last four digits only."""
        number = self.number
        national = str(number.national_number)
        return f"+{number.country_code} ••• •••• {national[-4:]}"


class Card(models.Model):
    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    ACTIVE, SUSPENDED, LOST_STOLEN, CLOSED = "active", "suspended", "lost_stolen", "closed"
    STATUS_CHOICES = [
        (ACTIVE, _("Active")), (SUSPENDED, _("Suspended")), (LOST_STOLEN, _("Lost or stolen")), (CLOSED, _("Closed")),
    ]

    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="cards", verbose_name=_("issuer"))
    cardholder = models.ForeignKey(Cardholder, on_delete=models.CASCADE, related_name="cards", verbose_name=_("cardholder"))
    product = models.ForeignKey(
        CardProduct, null=True, blank=True, on_delete=models.PROTECT, related_name="cards", verbose_name=_("card product")
    )
    # The issuer's BIN grant that holds the PAN: the AReq finds the card only through it. NULL
    # only for legacy cards no grant held at migration (`manage.py bin_grants attach-cards`).
    grant = models.ForeignKey(
        "issuers.BinGrant", null=True, blank=True, editable=False, on_delete=models.RESTRICT, related_name="cards",
        verbose_name=_("BIN grant"),
    )
    card_id = models.CharField(
        _("card ID"), max_length=48, validators=[card_id_validator], help_text=_("The issuer's card id.")
    )
    # The PAN: AES-GCM ciphertext with its key id, a keyed fingerprint for look-up, last 4 for people.
    pan_key_id = models.CharField(_("PAN key ID"), max_length=32, editable=False)
    pan_ciphertext = models.BinaryField(_("PAN (encrypted)"), editable=False)
    pan_fingerprint = models.CharField(_("PAN fingerprint"), max_length=64, editable=False, db_index=True)
    last4 = models.CharField(_("last 4 digits"), max_length=4, editable=False)
    network = models.CharField(_("network"), max_length=20, choices=NETWORK_CHOICES)
    co_badge = models.CharField(_("co-badge"), max_length=20, blank=True)
    expiry_month = models.PositiveSmallIntegerField(_("expiry month"))
    expiry_year = models.PositiveSmallIntegerField(_("expiry year"))
    status = models.CharField(_("status"), max_length=12, choices=STATUS_CHOICES, default=ACTIVE)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["card_id"]
        verbose_name = _("card")
        verbose_name_plural = _("cards")
        constraints = [
            models.UniqueConstraint(fields=["issuer", "card_id"], name="card_issuer_card_id_uniq"),
            models.UniqueConstraint(fields=["issuer", "pan_fingerprint"], name="card_issuer_pan_uniq"),
        ]
        indexes = [
            # The API's card list in keyset order (apps.core.pagination) within an issuer, and the
            # same order among the cards of one last 4: a page reads about a page of entries.
            models.Index(fields=["issuer", "-created_at", "-id"], name="cards_card_issuer_keyset_idx"),
            models.Index(fields=["issuer", "last4", "-created_at", "-id"], name="cards_card_last4_keyset_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.card_id} {mask_pan(self.last4)}"

    @property
    def masked_pan(self) -> str:
        return mask_pan(self.last4)

    @property
    def expiry(self) -> str:
        return f"{self.expiry_month:02d}/{self.expiry_year}"

    @staticmethod
    def pan_context(issuer_id: str) -> str:
        return f"pan:{issuer_id}"

    def decrypt_pan(self) -> str:
        """Only for the authentication-value MAC and network messages; never for display."""
        return unseal(Sealed(self.pan_key_id, bytes(self.pan_ciphertext)), context=self.pan_context(self.issuer.issuer_id))
