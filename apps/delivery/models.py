"""The two shapes every outbound channel's tables share (abstract: no table here).

A delivery is one logical message; it is committed with the work that caused it (the outbox) and
made by one or more tries, each an attempt row written when the try is claimed and completed when
the provider answered. apps.delivery.engine reads and writes only these fields; a channel adds
its own (the SMS destination, the webhook URL, the RReq message, ...)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


def default_max_tries() -> int:
    return settings.OUTBOUND_MAX_TRIES


class OutboundDelivery(models.Model):
    # A delivery takes tries while pending; every other status is the channel's end state.
    PENDING = "pending"

    status = models.CharField(_("status"), max_length=12, default=PENDING)
    # Tries claimed so far: each claim adds one in its own conditional UPDATE.
    tries = models.PositiveSmallIntegerField(pgettext_lazy("count", "tries"), default=0)
    # A manual retry grants another round, so the bound lives on the row.
    max_tries = models.PositiveSmallIntegerField(_("max tries"), default=default_max_tries)
    # When the next try is due (pending); NULL once nothing is left to do.
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # Set by a claim: until then the try is in flight and nobody else may claim; past it, whoever
    # claimed is presumed dead and the sweep hands the delivery to another worker.
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        abstract = True


class OutboundAttempt(models.Model):
    """One try. `delivery` (the foreign key) is declared by each channel."""

    CLAIMED, SUCCEEDED = "claimed", "succeeded"
    FAILED_TRANSIENT, FAILED_PERMANENT, INTERRUPTED = "failed_transient", "failed_permanent", "interrupted"
    STATES = [
        (CLAIMED, pgettext_lazy("attempt state", "claimed")),
        (SUCCEEDED, pgettext_lazy("attempt state", "succeeded")),
        (FAILED_TRANSIENT, pgettext_lazy("attempt state", "failed_transient")),
        (FAILED_PERMANENT, pgettext_lazy("attempt state", "failed_permanent")),
        (INTERRUPTED, pgettext_lazy("attempt state", "interrupted")),
    ]

    # The delivery's try number (its claim count when this try was claimed).
    number = models.PositiveSmallIntegerField(_("try number"))
    state = models.CharField(_("state"), max_length=20, choices=STATES, default=CLAIMED)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(
        _("status code"), null=True, blank=True, help_text=_("The provider's HTTP status.")
    )
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error_message = models.CharField(_("error message"), max_length=255, blank=True, help_text=_("Scrubbed."))
    response_excerpt = models.CharField(_("response excerpt"), max_length=500, blank=True, help_text=_("Scrubbed."))
    task_id = models.CharField(_("task ID"), max_length=255, blank=True)

    class Meta:
        abstract = True
