"""Values in words for staff pages and explanations (SPEC §5.6): countries and currencies by name,
amounts in their currency's format — in the active language (English or Japanese). EMV carries
countries and currencies as ISO numeric codes. transStatus and transStatusReason in words:
apps.threeds.emv.trans_status_text / reason_text (the codes are defined there)."""

from decimal import Decimal

import pycountry
from babel import Locale
from babel.numbers import format_currency, get_currency_name
from django.utils import translation


def _locale() -> str:
    return "ja" if (translation.get_language() or "en").startswith("ja") else "en"


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
