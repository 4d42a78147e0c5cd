"""The risk policy's admin form: amounts per currency chosen by name, a required reason for every
change, and the number of days a backtest replays. The bounds are the model's (RiskPolicy.clean)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.core.admin_scoping import ServiceModelForm
from apps.core.policy_fields import CurrencyAmountsField
from apps.threeds.backtest import DEFAULT_DAYS, MAX_DAYS
from apps.threeds.models import RiskPolicy
from apps.threeds.policy_words import LABELS, NO_METHOD_WORDS
from apps.threeds.risk import risk_policy_save

HELP = {
    "challenge_threshold": _("A transaction whose score reaches this (1–99) is challenged."),
    "amount_thresholds": _("Above the amount in its currency, the amount weight is added."),
    "tra_max_amounts": _("Merchant asks for the low-risk exemption (indicator 05): frictionless up to this amount."),
    "sca_performed_max_amounts": _("Merchant says SCA was already performed (indicator 07): frictionless up to this amount."),
    "velocity_max_per_hour": _("More are declined (N / 04)."),
    "velocity_warn_per_hour": _("At most the number before declining."),
    "first_creq_timeout_seconds": _("5–600."),
    "challenge_timeout_seconds": _("60–1800."),
    "oob_timeout_seconds": _("10–600."),
}


class RiskPolicyForm(ServiceModelForm):
    amount_thresholds = CurrencyAmountsField(label=LABELS["amount_thresholds"])
    tra_max_amounts = CurrencyAmountsField(label=LABELS["tra_max_amounts"])
    sca_performed_max_amounts = CurrencyAmountsField(label=LABELS["sca_performed_max_amounts"])
    reason = forms.CharField(
        label=_("Reason for change"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=_("Kept with the new version and shown in the policy's history."),
    )
    backtest_days = forms.IntegerField(
        label=_("Days to replay"), required=False, min_value=1, max_value=MAX_DAYS, initial=DEFAULT_DAYS,
        help_text=_("Backtest: this issuer's authentications of the last 1–90 days, replayed through the draft."),
    )

    # Set by the backtest view: validate the draft, write nothing, no reason needed.
    dry_run = False

    class Meta:
        model = RiskPolicy
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "no_method_outcome" in self.fields:
            self.fields["no_method_outcome"].choices = list(NO_METHOD_WORDS.items())
        for name, form_field in self.fields.items():
            if name in LABELS:
                form_field.label = LABELS[name]
                form_field.help_text = HELP.get(name, "")

    def clean(self):
        cleaned = super().clean()
        if not self.dry_run and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", _("Say why the policy changes: the reason is kept with the new version."))
        return cleaned

    def run_service(self):
        if self.dry_run:
            return self.instance
        risk_policy_save(policy=self.instance, actor=self.actor, reason=self.cleaned_data["reason"].strip())
        return self.instance


OUTCOME_WORDS = {
    "frictionless": _("Frictionless"),
    "challenge": _("Challenge"),
    "decline": _("Decline"),
}
LABEL_WORDS = {"fraud": _("Confirmed fraud"), "genuine": _("Genuine")}
