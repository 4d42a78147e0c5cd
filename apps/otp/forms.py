"""The OTP policy's admin form: countries by name, one SMS text per locale checked for its
placeholders, a sender per country, and a required reason for every change. The bounds are the
model's (OtpPolicy.clean, SPEC §3.5)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.core.admin_scoping import ServiceModelForm
from apps.core.policy_fields import CountriesField, CountryValuesField
from apps.otp.models import BOUNDS, OtpPolicy, template_problems
from apps.otp.policy_words import DELIVERY_MODE_WORDS, LABELS, TEMPLATE_LOCALES
from apps.otp.services import otp_policy_save

TEMPLATE_FIELDS = {f"sms_template_{locale}": locale for locale in TEMPLATE_LOCALES}
MAX_TEMPLATE_LENGTH = 320


def _template_field(locale: str) -> forms.CharField:
    return forms.CharField(
        label=_("SMS text (%(language)s)") % {"language": TEMPLATE_LOCALES[locale]}, required=False,
        max_length=MAX_TEMPLATE_LENGTH, widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text=_("Placeholders: {code} (required), {merchant}, {amount}, {minutes}. Empty: English is used."),
    )


class OtpPolicyForm(ServiceModelForm):
    allowed_countries = CountriesField(label=LABELS["allowed_countries"],
                                       help_text=_("SMS to numbers of other countries are refused."))
    sender_ids = CountryValuesField(
        max_length=16, label=LABELS["sender_ids"],
        help_text=_("A phone number, or up to 11 letters and digits where the country allows a name."),
    )
    reason = forms.CharField(
        label=_("Reason for change"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=_("Kept with the new version and shown in the policy's history."),
        error_messages={"required": _("Say why the policy changes: the reason is kept with the new version.")},
    )

    sms_template_en, sms_template_ja, sms_template_fr = (_template_field(locale) for locale in TEMPLATE_LOCALES)

    class Meta:
        model = OtpPolicy
        exclude = ["version", "updated_by", "sms_templates"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        templates = self.instance.sms_templates or {}
        for name, locale in TEMPLATE_FIELDS.items():
            self.fields[name].initial = templates.get(locale, "")
        if "delivery_mode" in self.fields:
            self.fields["delivery_mode"].choices = list(DELIVERY_MODE_WORDS.items())
        if "product" in self.fields:
            self.fields["product"].label = _("Card product")
            self.fields["product"].help_text = _("Empty: the issuer's default policy. Set: an override for this card product.")
        for name, form_field in self.fields.items():
            if name in LABELS:
                form_field.label = LABELS[name]
            if name in BOUNDS:
                _default, low, high = BOUNDS[name]
                form_field.help_text = f"{low}–{high}"

    def _clean_template(self, name):
        text = self.cleaned_data.get(name, "").strip()
        if text:
            for problem in template_problems(text):
                self.add_error(name, problem)
        return text

    def clean(self):
        cleaned = super().clean()
        templates = dict(self.instance.sms_templates or {})
        for name, locale in TEMPLATE_FIELDS.items():
            text = self._clean_template(name)
            if text:
                templates[locale] = text
            else:
                templates.pop(locale, None)  # no text of its own: the cardholder gets the English one
        # Locales the form has no field for keep their texts. A refused text stays off the policy:
        # its error is on its own field, not again on the model's.
        if not any(name in self.errors for name in TEMPLATE_FIELDS):
            self.instance.sms_templates = templates
        return cleaned

    def run_service(self):
        # Every change is a new frozen version; challenges keep the version they started under.
        otp_policy_save(policy=self.instance, actor=self.actor, reason=self.cleaned_data["reason"].strip())
        return self.instance
