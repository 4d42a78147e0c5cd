"""Primary account number rules: format, Luhn, network by prefix, masking."""

import re

PAN_RE = re.compile(r"^[0-9]{13,19}$")

VISA = "visa"
MASTERCARD = "mastercard"
AMEX = "amex"
JCB = "jcb"
DISCOVER = "discover"
CARTES_BANCAIRES = "cartes_bancaires"

NETWORK_CHOICES = [
    (VISA, "Visa"),
    (MASTERCARD, "Mastercard"),
    (AMEX, "American Express"),
    (JCB, "JCB"),
    (DISCOVER, "Discover"),
    (CARTES_BANCAIRES, "Cartes Bancaires"),
]


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def pan_problem(pan: object) -> str | None:
    """Why this is not a usable PAN, or None. The message never contains the PAN."""
    if not isinstance(pan, str):
        return "Must be a string of 13 to 19 digits."
    if not PAN_RE.match(pan):
        return "Must be 13 to 19 digits."
    if not luhn_valid(pan):
        return "Fails the Luhn check."
    return None


def network_from_prefix(pan: str) -> str | None:
    """The network a PAN's leading digits belong to (Cartes Bancaires comes only from a product)."""
    if pan.startswith("4"):
        return VISA
    two, four, six = int(pan[:2]), int(pan[:4]), int(pan[:6])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return MASTERCARD
    if two in (34, 37):
        return AMEX
    if 3528 <= four <= 3589:
        return JCB
    if four == 6011 or two == 65 or 644 <= int(pan[:3]) <= 649 or 622126 <= six <= 622925:
        return DISCOVER
    return None


def mask_pan(last4: str) -> str:
    return f"•••• {last4}"
