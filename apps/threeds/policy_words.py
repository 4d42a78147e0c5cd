"""A risk policy's settings in words, for its form labels, its history and the diff between two
versions ("Challenge threshold: 50 → 40", "Amount threshold JPY: none → ¥30,000")."""

from decimal import Decimal

from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from apps.core.diff import Change, changes
from apps.core.display import amount, currency_code

LABELS = {
    "base_score": _("Base score"),
    "challenge_threshold": _("Challenge threshold"),
    "amount_thresholds": _("Amount thresholds"),
    "amount_weight": _("Weight of an amount over its threshold"),
    "tra_max_amounts": _("Low-risk (TRA) exemption up to"),
    "sca_performed_max_amounts": _("SCA already performed: frictionless up to"),
    "exemption_credit": _("Score taken off for an accepted exemption"),
    "requestor_prefers_challenge_weight": _("Weight when the merchant prefers a challenge"),
    "velocity_max_per_hour": _("Authentications per card per hour before declining"),
    "velocity_warn_per_hour": _("Authentications per card per hour that add weight"),
    "velocity_weight": _("Weight of many authentications in the hour"),
    "new_merchant_weight": _("Weight of a merchant new to the card"),
    "non_payment_weight": _("Weight of a non-payment authentication"),
    "three_ds_method_missing_weight": _("Weight when the 3DS Method data are missing"),
    "browser_data_mismatch_weight": _("Weight when the browser data disagree"),
    "no_method_outcome": _("When no challenge method is available"),
    "allow_oob": _("Challenge in the banking app (OOB)"),
    "allow_fallback_to_sms": _("Fall back to SMS when the app does not answer"),
    "first_creq_timeout_seconds": _("Seconds to wait for the challenge to start"),
    "challenge_timeout_seconds": _("Seconds a challenge may take"),
    "oob_timeout_seconds": _("Seconds to wait for the app"),
}
# Per currency: the label of one entry, e.g. "Amount threshold JPY".
PER_CURRENCY = {
    "amount_thresholds": _("Amount threshold %(currency)s"),
    "tra_max_amounts": _("Low-risk (TRA) exemption up to, %(currency)s"),
    "sca_performed_max_amounts": _("SCA already performed, frictionless up to, %(currency)s"),
}
NO_METHOD_WORDS = {"N": _("Decline (N / 13)"), "A": _("Attempt (A)")}


def major_amount(value: str, currency: str) -> str:
    """An amount in major units ("30000", "250.00") in the currency's format: "¥30,000"."""
    number = Decimal(value)
    places = max(0, -number.as_tuple().exponent)
    return amount(int(number.scaleb(places)), currency, places)


def _shown(name: str, value) -> str:
    if isinstance(value, bool):
        return pgettext("policy value", "yes") if value else pgettext("policy value", "no")
    if name == "no_method_outcome":
        return str(NO_METHOD_WORDS.get(value, value))
    return str(value)


def risk_policy_words(settings: dict) -> dict[str, str]:
    """label → value in words, one entry per currency of the per-currency settings."""
    words = {}
    for name, label in LABELS.items():
        if name not in settings:
            continue
        value = settings[name]
        if name in PER_CURRENCY:
            for currency, limit in sorted(value.items()):
                words[str(PER_CURRENCY[name] % {"currency": currency_code(currency) or currency})] = major_amount(limit, currency)
        else:
            words[str(label)] = _shown(name, value)
    return words


def risk_policy_changes(before: dict | None, after: dict) -> list[Change]:
    """The changes from one version's settings to the next, in the active language."""
    return changes(risk_policy_words(before or {}), risk_policy_words(after), absent=gettext("none"))
