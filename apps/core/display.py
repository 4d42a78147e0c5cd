"""Values in words for staff pages and explanations (SPEC §5.6): statuses and reasons with their
meaning, countries and currencies by name, amounts in their currency's format — in the active
language (English or Japanese). EMV carries countries and currencies as ISO numeric codes."""

from decimal import Decimal

import pycountry
from babel import Locale
from babel.numbers import format_currency, get_currency_name
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from apps.threeds import emv

TRANS_STATUS_DESCRIPTIONS = {
    "Y": _("Authenticated"),
    "A": _("Attempted (proof of attempt)"),
    "N": _("Not authenticated / declined"),
    "U": _("Authentication could not be performed"),
    "R": _("Rejected by the issuer"),
    "C": _("Challenge required"),
    "D": _("Decoupled authentication"),
}

# transStatusReason meanings (EMV table A.4), translatable; emv.REASON_DESCRIPTIONS keeps the
# English wording the messages use.
REASON_DESCRIPTIONS = {
    emv.REASON_AUTH_FAILED: _("Card authentication failed"),
    emv.REASON_FREQUENCY_LIMIT: _("Exceeds authentication frequency limit"),
    emv.REASON_CARD_EXPIRED: _("Expired card"),
    emv.REASON_NO_CARD_RECORD: _("No card record"),
    emv.REASON_LOST_STOLEN: _("Stolen card"),
    emv.REASON_TRANSACTION_NOT_PERMITTED: _("Transaction not permitted to cardholder"),
    emv.REASON_NO_METHOD: _("Cardholder not enrolled in service"),
    emv.REASON_TIMEOUT: _("Transaction timed out at the ACS"),
    emv.REASON_TOO_MANY_ATTEMPTS: _("Exceeds ACS maximum challenges"),
    emv.REASON_3RI_NOT_SUPPORTED: _("3RI transaction not supported"),
    emv.REASON_ACS_TECHNICAL: _("ACS technical issue"),
}


def _locale() -> str:
    return "ja" if (translation.get_language() or "en").startswith("ja") else "en"


def trans_status(status: str | None) -> str:
    """`"N"` → "N — Not authenticated / declined"."""
    if not status:
        return "—"
    meaning = TRANS_STATUS_DESCRIPTIONS.get(status)
    return f"{status} — {meaning}" if meaning else status


def reason(code: str | None) -> str:
    """`"13"` → "13 — Cardholder not enrolled in service"."""
    if not code:
        return "—"
    meaning = REASON_DESCRIPTIONS.get(code)
    return f"{code} — {meaning}" if meaning else code


def country_name(code: str | None) -> str:
    """ISO 3166 numeric ("392") or alpha-2 ("JP") → "Japan" / "日本"; unknown codes stay as they are."""
    if not code:
        return "—"
    country = pycountry.countries.get(numeric=code) if code.isdigit() else pycountry.countries.get(alpha_2=code.upper())
    if country is None:
        return code
    return Locale(_locale()).territories.get(country.alpha_2, country.name)


def currency_code(numeric: str | None) -> str | None:
    """ISO 4217 numeric ("392") → alpha ("JPY"); None when unknown."""
    if not numeric:
        return None
    currency = pycountry.currencies.get(numeric=numeric)
    return currency.alpha_3 if currency else None


def currency_name(numeric: str | None) -> str:
    alpha = currency_code(numeric)
    if alpha is None:
        return numeric or "—"
    return get_currency_name(alpha, locale=_locale())


def amount(amount_minor: int | str | None, currency_numeric: str | None, exponent: int | str | None = None) -> str:
    """Minor units as EMV carries them → "¥1,500" / "€1,234.56" in the active language. The AReq's
    exponent decides the decimals; a currency we cannot name shows its code beside the number."""
    if amount_minor in (None, ""):
        return "—"
    alpha = currency_code(currency_numeric)
    exp = int(exponent) if exponent not in (None, "") else 2
    value = Decimal(int(amount_minor)).scaleb(-exp)
    if alpha is None:
        return f"{value:,.{exp}f} ({currency_numeric})"
    return format_currency(value, alpha, locale=_locale(), decimal_quantization=False)
