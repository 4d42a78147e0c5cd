"""What analysts write: a label (confirmed fraud / genuine) and a note on a transaction — their
only write (SPEC §5.6), audited. The policy backtest counts these labels."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TransactionLabel(models.Model):
    FRAUD, GENUINE = "fraud", "genuine"
    LABELS = [(FRAUD, _("Confirmed fraud")), (GENUINE, _("Genuine"))]

    # One label per transaction: the latest analyst's judgement; its changes are in the audit log.
    transaction = models.OneToOneField("threeds.Transaction", on_delete=models.CASCADE, related_name="label")
    # Denormalised from the transaction so per-issuer filters and the backtest need no join.
    issuer = models.ForeignKey("issuers.Issuer", on_delete=models.CASCADE, related_name="transaction_labels")
    label = models.CharField(_("label"), max_length=10, choices=LABELS)
    note = models.TextField(_("note"), blank=True, max_length=2000)
    labelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("transaction label")
        verbose_name_plural = _("transaction labels")
        indexes = [models.Index(fields=["issuer", "label"], name="analyst_label_issuer_label")]

    def __str__(self) -> str:
        return f"{self.get_label_display()} — {self.transaction_id}"
