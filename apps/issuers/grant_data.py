"""Grant derivation and card attachment, written against the model classes they are given so
that the migrations (historical models) and `manage.py bin_grants` (real models) share them.

Neither ever logs or returns a PAN: a card's PAN is decrypted only to compute its 11-digit prefix
key, which is compared with the grants and dropped."""

from apps.core.crypto import Sealed, unseal
from apps.issuers.models import GRANT_PREFIX_DIGITS, pan_prefix_key, prefix_interval


def _overlap(a_low: int, a_high: int, b_low: int, b_high: int) -> bool:
    return a_low <= b_high and b_low <= a_high


def derive_grants(*, BinRange, BinGrant, created_by: str) -> dict:
    """Grant to each issuer the BIN ranges of its card products that no other issuer's product
    range (nor any existing grant) overlaps; overlapping ranges of one issuer become one grant.
    Returns {"created": n, "ambiguous": [(issuer_pk, start, end), ...]} — the ranges left for
    the operator to decide."""
    ranges = []
    for r in BinRange.objects.select_related("product").order_by("pk"):
        low, high = prefix_interval(r.start, r.end)
        ranges.append((r.product.issuer_id, r.start, r.end, low, high))
    existing = list(BinGrant.objects.values_list("issuer_id", "low", "high"))

    clear, ambiguous = [], []
    for issuer_pk, start, end, low, high in ranges:
        contested = any(o[0] != issuer_pk and _overlap(low, high, o[3], o[4]) for o in ranges) or any(
            _overlap(low, high, g_low, g_high) for _, g_low, g_high in existing
        )
        (ambiguous if contested else clear).append((issuer_pk, start, end, low, high))

    merged: list[list] = []  # [issuer_pk, start, end, low, high], per issuer, overlapping merged
    for issuer_pk, start, end, low, high in sorted(clear, key=lambda r: (r[0], r[3])):
        last = merged[-1] if merged else None
        if last and last[0] == issuer_pk and low <= last[4]:
            last[4] = max(last[4], high)
            last[1], last[2] = str(last[3]).zfill(GRANT_PREFIX_DIGITS), str(last[4]).zfill(GRANT_PREFIX_DIGITS)
        else:
            merged.append([issuer_pk, start[:GRANT_PREFIX_DIGITS], end[:GRANT_PREFIX_DIGITS], low, high])
    for issuer_pk, start, end, low, high in merged:
        BinGrant.objects.create(issuer_id=issuer_pk, start=start, end=end, low=low, high=high, created_by=created_by)
    return {"created": len(merged), "ambiguous": [(r[0], r[1], r[2]) for r in ambiguous]}


def attach_cards(*, Card, BinGrant, cards) -> dict:
    """Set each card's grant to its own issuer's grant that holds its PAN (None when none does).
    `cards` is a queryset of Card. Returns {"attached": n, "unattached": n}."""
    grants_by_issuer: dict = {}
    for grant in BinGrant.objects.order_by("low"):
        grants_by_issuer.setdefault(grant.issuer_id, []).append(grant)
    attached = unattached = 0
    for card in cards.select_related("issuer").order_by("pk").iterator():
        pan = unseal(Sealed(card.pan_key_id, bytes(card.pan_ciphertext)), context=f"pan:{card.issuer.issuer_id}")
        key = pan_prefix_key(pan)
        del pan
        grant = next((g for g in grants_by_issuer.get(card.issuer_id, []) if g.low <= key <= g.high), None)
        if grant is None:
            unattached += 1
        else:
            attached += 1
        if card.grant_id != (grant.pk if grant else None):
            Card.objects.filter(pk=card.pk).update(grant=grant)
    return {"attached": attached, "unattached": unattached}
