"""An OTP policy's settings in words, for its form labels, its history and the diff between two
versions ("Wrong codes allowed: 3 → 5", "SMS text (Japanese): … → …")."""

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.diff import Change, changes
from apps.core.display import country_name
from apps.core.policy_fields import DEFAULT_KEY

LABELS = {
    "delivery_mode": _("Who sends the SMS"),
    "code_length": _("Digits in the code"),
    "lifetime_seconds": _("Seconds a code stays valid"),
    "max_attempts": _("Wrong codes allowed"),
    "max_resends": _("Resends per challenge"),
    "resend_cooldown_seconds": _("Seconds between two sends"),
    "max_sends_per_card_hour": _("Codes per card in any hour"),
    "max_sends_per_card_day": _("Codes per card in any 24 hours"),
    "max_sends_per_phone_day": _("Codes per phone number in any 24 hours"),
    "allowed_countries": _("Countries SMS may go to"),
    "sms_templates": _("SMS text"),
    "sender_ids": _("Sender per destination country"),
}
TEMPLATE_LOCALES = {"en": _("English"), "ja": _("Japanese"), "fr": _("French")}
DELIVERY_MODE_WORDS = {"provider": _("This service, through the SMS provider"), "issuer": _("The issuer (DeliverOTP webhook)")}


def _locale_name(locale: str) -> str:
    return str(TEMPLATE_LOCALES.get(locale, locale))


def otp_policy_words(settings: dict) -> dict[str, str]:
    """label → value in words; one entry per locale's text and per country's sender."""
    words = {}
    for name, label in LABELS.items():
        if name not in settings:
            continue
        value = settings[name]
        if name == "allowed_countries":
            words[str(label)] = ", ".join(sorted(country_name(code) for code in value)) or gettext("none")
        elif name == "sms_templates":
            for locale, text in sorted(value.items()):
                words[gettext("SMS text (%(language)s)") % {"language": _locale_name(locale)}] = text
        elif name == "sender_ids":
            for country, sender in sorted(value.items()):
                where = gettext("any other country") if country == DEFAULT_KEY else country_name(country)
                words[gettext("Sender for %(country)s") % {"country": where}] = sender
        elif name == "delivery_mode":
            words[str(label)] = str(DELIVERY_MODE_WORDS.get(value, value))
        else:
            words[str(label)] = str(value)
    return words


def otp_policy_changes(before: dict | None, after: dict) -> list[Change]:
    return changes(otp_policy_words(before or {}), otp_policy_words(after), absent=gettext("none"))
