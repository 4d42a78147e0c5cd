"""Reads, always scoped to one issuer: another issuer's id is simply not found (404)."""

import hmac
import uuid

from apps.cards.models import BinRange, Card, Cardholder, CardProduct, Phone
from apps.core.crypto import pan_fingerprint
from apps.core.exceptions import NotFound
from apps.core.pan import network_from_prefix
from apps.issuers.models import BinGrant, prefix_interval


def _uuid_or_404(value) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound()


def cardholder_get(*, issuer, cardholder_id) -> Cardholder:
    cardholder = Cardholder.objects.filter(issuer=issuer, pk=_uuid_or_404(cardholder_id)).select_related("issuer").first()
    if cardholder is None:
        raise NotFound("No such cardholder.")
    return cardholder


def cardholder_find(*, issuer, cardholder_id) -> Cardholder | None:
    """For references inside a request body: None rather than 404."""
    try:
        return cardholder_get(issuer=issuer, cardholder_id=cardholder_id)
    except NotFound:
        return None


def cardholder_list(*, issuer, external_id: str | None = None):
    qs = Cardholder.objects.filter(issuer=issuer)
    if external_id:
        qs = qs.filter(external_id=external_id)
    return qs


def phone_get(*, cardholder: Cardholder, phone_id) -> Phone:
    phone = cardholder.phones.filter(pk=_uuid_or_404(phone_id)).first()
    if phone is None:
        raise NotFound("No such phone.")
    return phone


def card_product_get(*, issuer, product_id) -> CardProduct:
    product = CardProduct.objects.filter(issuer=issuer, pk=_uuid_or_404(product_id)).prefetch_related("bin_ranges").first()
    if product is None:
        raise NotFound("No such card product.")
    return product


def card_product_find(*, issuer, product_id) -> CardProduct | None:
    try:
        return card_product_get(issuer=issuer, product_id=product_id)
    except NotFound:
        return None


def card_product_list(*, issuer):
    return CardProduct.objects.filter(issuer=issuer).prefetch_related("bin_ranges")


def card_list(*, issuer, cardholder=None, card_id: str | None = None, status: str | None = None, last4: str | None = None):
    """The issuer's cards, filtered; ordered by the caller (the API pages them newest first).
    `cardholder` is the cardholder's id, `card_id` the issuer's own card id (exact)."""
    qs = Card.objects.filter(issuer=issuer)
    if cardholder is not None:
        qs = qs.filter(cardholder_id=cardholder)
    if card_id:
        qs = qs.filter(card_id=card_id)
    if status:
        qs = qs.filter(status=status)
    if last4:
        qs = qs.filter(last4=last4)
    return qs


def card_find_by_card_id(*, issuer, card_id: str) -> Card | None:
    """The issuer's card of this card_id (the issuer's own id), with its cardholder; or None."""
    return Card.objects.filter(issuer=issuer, card_id=card_id).select_related("issuer", "cardholder").first()


def card_pan_matches(*, card: Card, pan: str) -> bool:
    """Whether `pan` is the card's enrolled PAN, by its keyed fingerprint (never decrypted)."""
    return hmac.compare_digest(card.pan_fingerprint, pan_fingerprint(pan))


def card_get(*, issuer, card_id) -> Card:
    card = Card.objects.filter(issuer=issuer, pk=_uuid_or_404(card_id)).select_related("issuer", "cardholder", "product").first()
    if card is None:
        raise NotFound("No such card.")
    return card


# ---------------------------------------------------------------- BIN grants (apps.issuers) and the cards inside


def bin_grant_in_use(*, grant: BinGrant) -> bool:
    """Whether a card is attached to the grant or a card product range of its issuer overlaps it."""
    if grant.cards.exists():
        return True
    for r in BinRange.objects.filter(product__issuer=grant.issuer_id).only("start", "end"):
        low, high = prefix_interval(r.start, r.end)
        if low <= grant.high and grant.low <= high:
            return True
    return False


# ---------------------------------------------------------------- card ranges for the DSs (SPEC §5.1)

# Bounds are compared as 19-digit strings (the longest PAN, EMV's longest card range bound):
# a prefix range "411100"-"411199" covers "4111000000000000000"-"4111999999999999999".
_RANGE_DIGITS = 19


def _span(start: str, end: str) -> tuple[int, int]:
    return int(start.ljust(_RANGE_DIGITS, "0")), int(end.ljust(_RANGE_DIGITS, "9"))


def _runs_by_prefix_network(low: int, high: int) -> list[tuple[int, int, str | None]]:
    """[low, high] (19-digit bounds) cut where the network read from the PAN prefix changes.
    network_from_prefix looks at 6 digits at most, so walking the 6-digit prefixes is exact; a
    grant spans few of them (a whole 6-digit BIN is one)."""
    unit = 10 ** (_RANGE_DIGITS - 6)
    runs: list[list] = []
    for prefix in range(low // unit, high // unit + 1):
        network = network_from_prefix(f"{prefix:06d}")
        lo, hi = max(low, prefix * unit), min(high, (prefix + 1) * unit - 1)
        if runs and runs[-1][2] == network:
            runs[-1][1] = hi
        else:
            runs.append([lo, hi, network])
    return [tuple(run) for run in runs]


def card_range_segments(*, issuer) -> list[dict]:
    """The issuer's card ranges as the DSs must know them: every BIN grant of the issuer, cut into
    the parts its card products' BIN ranges hold (their network and co-badge) and the parts no
    product holds (network from the PAN prefix, as a card enrolled there gets it). Bounds are
    19-digit integers, inclusive, sorted. Only the issuer's grants bound the result: a product
    range some grant does not cover (legacy data) is not advertised, since the AReq would not
    find its cards either. Prefixes of no known network are left out: no card can be there
    without a product, and there is no DS to give them to."""
    products = []
    for product in CardProduct.objects.filter(issuer=issuer).prefetch_related("bin_ranges"):
        for r in product.bin_ranges.all():
            products.append((*_span(r.start, r.end), product))
    products.sort(key=lambda item: item[0])

    segments: list[dict] = []
    for grant in BinGrant.objects.filter(issuer=issuer).order_by("low"):
        g_low, g_high = _span(grant.start, grant.end)
        at = g_low
        for p_low, p_high, product in products:
            if p_high < at or p_low > g_high:
                continue
            if p_low > at:
                segments += _uncovered(at, p_low - 1)
            lo, hi = max(p_low, at), min(p_high, g_high)
            segments.append({"low": lo, "high": hi, "network": product.network, "co_badge": product.co_badge, "product": product})
            at = hi + 1
            if at > g_high:
                break
        if at <= g_high:
            segments += _uncovered(at, g_high)
    return segments


def _uncovered(low: int, high: int) -> list[dict]:
    return [
        {"low": lo, "high": hi, "network": network, "co_badge": "", "product": None}
        for lo, hi, network in _runs_by_prefix_network(low, high)
        if network is not None
    ]
