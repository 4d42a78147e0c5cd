"""Reads of BIN grants. A PAN is compared through its 11-digit prefix key only, in process or
against the grants' low/high integers: never stored, never logged."""

from apps.issuers.models import BinGrant, pan_prefix_key, prefix_interval


def bin_grant_list(*, issuer=None):
    qs = BinGrant.objects.select_related("issuer").order_by("low")
    return qs if issuer is None else qs.filter(issuer=issuer)


def bin_grant_for_pan(*, issuer, pan: str) -> BinGrant | None:
    """The issuer's own grant that holds this PAN, or None. Never looks at other issuers' grants,
    so the answer for a PAN another issuer holds is the same as for one nobody holds."""
    key = pan_prefix_key(pan)
    return BinGrant.objects.filter(issuer=issuer, low__lte=key, high__gte=key).first()


def bin_grants_cover(*, issuer, start: str, end: str) -> bool:
    """Whether the issuer's grants, together, cover every prefix of the BIN range start–end."""
    low, high = prefix_interval(start, end)
    at = low
    for g_low, g_high in BinGrant.objects.filter(issuer=issuer, high__gte=low, low__lte=high).order_by("low").values_list("low", "high"):
        if g_low > at:
            return False
        at = max(at, g_high + 1)
        if at > high:
            return True
    return at > high

