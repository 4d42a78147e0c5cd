"""The card ranges an issuer gives each Directory Server (SPEC §5.1 `GET /api/v1/card-ranges`), as
EMV `cardRangeData` entries (the PRes shape): which PANs this ACS authenticates, with which
protocol versions, 3DS Method URL and ACS capabilities."""

from django.conf import settings
from django.urls import reverse

from apps.cards.selectors import card_range_segments
from apps.core.pan import AMEX
from apps.threeds.emv import SUPPORTED_VERSIONS
from apps.threeds.models import RiskPolicy

# The versions a DS is told (SPEC §5.1) are the ones the AReq parser accepts, from the same table.
ACS_START_PROTOCOL_VERSION = SUPPORTED_VERSIONS[0]
ACS_END_PROTOCOL_VERSION = SUPPORTED_VERSIONS[-1]

# EMV acsInfoInd values: 01 authentication available at the ACS, 02 attempts supported.
# (03 decoupled and 04 whitelisting are not offered: neither is implemented yet.)
ACS_INFO_AUTHENTICATION = "01"
ACS_INFO_ATTEMPTS = "02"

# A full list, each range to be added (EMV actionInd A); the DS replaces what it held for us.
ACTION_ADD = "A"

# DSs compare full PAN-length bounds: the start padded with 0s, the end with 9s. No PAN length is
# recorded per product, so the usual one is used — 16, or 15 for Amex — and 19 (EMV's longest)
# only when a bound does not fit the shorter length (a product range of 17 to 19 digits).
DEFAULT_PAN_LENGTH = 16
PAN_LENGTHS = {AMEX: 15}
_DIGITS = 19


def three_ds_method_url() -> str:
    # The one place threeDSMethodURL is built: the page's route (POST /3ds/v2/method, SPEC §3.8)
    # from the URL conf, so the DS is told the address the page is really served at.
    return f"{settings.PUBLIC_BASE_URL}{reverse('threeds-method')}"


def _bounds(low: int, high: int, network: str) -> tuple[str, str]:
    start, end = f"{low:0{_DIGITS}d}", f"{high:0{_DIGITS}d}"
    for length in (PAN_LENGTHS.get(network, DEFAULT_PAN_LENGTH), DEFAULT_PAN_LENGTH):
        if set(start[length:]) <= {"0"} and set(end[length:]) <= {"9"}:
            return start[:length], end[:length]
    return start, end


def _acs_info_ind(issuer) -> list[str]:
    # Read, not risk_policy_for(): a GET creates nothing; an issuer without a policy has the default (N).
    outcome = RiskPolicy.objects.filter(issuer=issuer).values_list("no_method_outcome", flat=True).first()
    # The ACS authenticates every card it holds (01). It answers attempts (A) only when the
    # issuer's policy says so for a challenge without a method (SPEC §3.1), hence 02 then only.
    return [ACS_INFO_AUTHENTICATION, ACS_INFO_ATTEMPTS] if outcome == "A" else [ACS_INFO_AUTHENTICATION]


def card_range_data(*, issuer, network: str | None = None) -> list[dict]:
    """One entry per range and DS. A Cartes Bancaires product is co-badged: its ranges go to the
    CB DS and to its co-badge's DS, so they are listed once under each network. `network` keeps
    the entries of one DS only."""
    method_url, acs_info_ind = three_ds_method_url(), _acs_info_ind(issuer)
    entries = []
    for segment in card_range_segments(issuer=issuer):
        for net in filter(None, (segment["network"], segment["co_badge"])):
            if network is not None and net != network:
                continue
            start, end = _bounds(segment["low"], segment["high"], net)
            entries.append({
                "startRange": start,
                "endRange": end,
                "network": net,
                "actionInd": ACTION_ADD,
                "acsStartProtocolVersion": ACS_START_PROTOCOL_VERSION,
                "acsEndProtocolVersion": ACS_END_PROTOCOL_VERSION,
                "threeDSMethodURL": method_url,
                "acsInfoInd": acs_info_ind,
            })
    return entries
