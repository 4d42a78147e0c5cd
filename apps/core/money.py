"""Amounts as EMV 3DS carries them (minor units, ISO 4217 numeric currency, exponent) → text."""

from decimal import Decimal

# ISO 4217 numeric → (alpha code, symbol). The currencies an issuer in JP/EU/US sees most; any
# other currency shows its alpha or numeric code, never a wrong symbol.
CURRENCIES = {
    "392": ("JPY", "¥"),
    "978": ("EUR", "€"),
    "840": ("USD", "$"),
    "826": ("GBP", "£"),
    "756": ("CHF", "CHF"),
    "124": ("CAD", "CA$"),
    "036": ("AUD", "A$"),
    "156": ("CNY", "CN¥"),
    "410": ("KRW", "₩"),
    "344": ("HKD", "HK$"),
    "702": ("SGD", "S$"),
    "901": ("TWD", "NT$"),
    "764": ("THB", "฿"),
    "752": ("SEK", "SEK"),
    "578": ("NOK", "NOK"),
    "208": ("DKK", "DKK"),
    "985": ("PLN", "PLN"),
}


def currency_alpha(numeric: str) -> str:
    return CURRENCIES.get(numeric, (numeric, numeric))[0]


def format_amount(amount_minor: int | str, currency_numeric: str, exponent: int | str, locale: str = "en") -> str:
    """`format_amount(123456, "978", 2, "fr")` → "1 234,56 €"; `(1000, "392", 0, "ja")` → "¥1,000"."""
    exponent = int(exponent)
    value = Decimal(int(amount_minor)).scaleb(-exponent)
    alpha, symbol = CURRENCIES.get(currency_numeric, (currency_numeric, currency_numeric))
    number = f"{value:,.{exponent}f}"
    if locale == "fr":
        number = number.replace(",", "\u202f").replace(".", ",")
        return f"{number}\u00a0{symbol}"
    if len(symbol) > 1 and symbol.isalpha():
        return f"{symbol}\u00a0{number}"
    return f"{symbol}{number}"
