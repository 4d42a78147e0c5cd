"""Reads, always scoped to one issuer: another issuer's id is simply not found (404)."""

import uuid

from apps.cards.models import BinRange, Card, Cardholder, CardProduct, Phone
from apps.core.exceptions import NotFound
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
