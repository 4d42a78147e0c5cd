"""The out-of-band step of a challenge (SPEC §3.4, §5.3): one request to the cardholder's app.

The request is addressed to the cardholder's active devices at the time it was made; whichever of
them answers decides it, once. The WebAuthn challenge handed out at "proceed" is bound to the
transaction and a fresh nonce, and to the device that asked for it.
"""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class AuthnRequest(models.Model):
    PENDING = "pending"  # waiting for the app
    PROCEEDED = "proceeded"  # the cardholder chose to confirm; request options handed out
    APPROVED = "approved"  # a valid assertion arrived: the challenge succeeded
    CANCELLED = "cancelled"  # the cardholder declined in the app
    FAILED = "failed"  # too many bad assertions, or the device was refused (clone suspected)
    EXPIRED = "expired"  # the OOB wait ran out
    UNDELIVERABLE = "undeliverable"  # no push could reach any device
    WITHDRAWN = "withdrawn"  # the challenge ended some other way (timeout, cancel on the page)
    STATES = [
        (PENDING, pgettext_lazy("OOB request state", "pending")),
        (PROCEEDED, pgettext_lazy("OOB request state", "proceeded")),
        (APPROVED, pgettext_lazy("OOB request state", "approved")),
        (CANCELLED, pgettext_lazy("OOB request state", "cancelled")),
        (FAILED, pgettext_lazy("OOB request state", "failed")),
        (EXPIRED, pgettext_lazy("OOB request state", "expired")),
        (UNDELIVERABLE, pgettext_lazy("OOB request state", "undeliverable")),
        (WITHDRAWN, pgettext_lazy("OOB request state", "withdrawn")),
    ]
    OPEN_STATES = (PENDING, PROCEEDED)

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    issuer = models.ForeignKey(
        "issuers.Issuer", on_delete=models.CASCADE, related_name="authn_requests", verbose_name=_("issuer")
    )
    # acsTransID is the request's public name (the push and the SDK API use it).
    challenge = models.OneToOneField(
        "threeds.Challenge", on_delete=models.CASCADE, related_name="authn_request", verbose_name=_("challenge")
    )
    cardholder = models.ForeignKey(
        "cards.Cardholder", on_delete=models.CASCADE, related_name="authn_requests", verbose_name=_("cardholder")
    )
    devices = models.ManyToManyField(
        "devices.Device", related_name="authn_requests", verbose_name=_("devices"),
        help_text=_("The devices it was sent to."),
    )
    state = models.CharField(_("state"), max_length=16, choices=STATES, default=PENDING)
    # Set at proceed: the WebAuthn challenge (sha256 of acsTransID and a nonce) and who asked.
    webauthn_challenge = models.BinaryField(_("WebAuthn challenge"), null=True, editable=False)
    proceeded_device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("device that proceeded"),
    )
    proceeded_at = models.DateTimeField(_("proceeded"), null=True, blank=True)
    assertion_failures = models.PositiveSmallIntegerField(_("failed assertions"), default=0)
    decided_device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("device that decided"),
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("OOB request")
        verbose_name_plural = _("OOB requests")
        indexes = [models.Index(fields=["cardholder", "state"], name="oob_request_open_idx")]

    def __str__(self) -> str:
        return f"OOB request {self.challenge_id} ({self.state})"

    @property
    def acs_trans_id(self):
        return self.challenge_id

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES
