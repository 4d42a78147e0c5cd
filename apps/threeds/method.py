"""The 3DS Method (SPEC §3.8): what the page at threeDSMethodURL is given, what it collects, how
long that is kept, and what the AReq makes of it.

The views (apps.threeds.views_method) read forms and render; the rules are here.
"""

import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.threeds.emv import BROWSER
from apps.threeds.messages import NotBase64urlJson, base64url_json_decode, base64url_json_encode, uuid36
from apps.threeds.models import ThreeDSMethodData

# Kept this long for the AReq (SPEC §3.8); older rows are ignored by the AReq and swept.
METHOD_DATA_TTL = timedelta(minutes=10)
MAX_METHOD_DATA_CHARS = 4096  # the 3DS Server's threeDSMethodData: two short elements
MAX_NOTIFICATION_URL_CHARS = 2048
MAX_COLLECTED_BYTES = 4096  # what the page posts back

# The page's collection post is tied to the page we rendered, for this long (the page has 10 s).
COLLECT_TOKEN_SALT = "threeds.method.collect"
COLLECT_TOKEN_MAX_AGE = 60

# three_ds_method on the transaction (browser channel only).
COMPLETED, MISSING, NOT_COMPLETED, UNAVAILABLE = "completed", "missing", "not_completed", "unavailable"
_BY_COMP_IND = {"N": NOT_COMPLETED, "U": UNAVAILABLE}
# What staff read for a transaction's three_ds_method (admin, analysts).
METHOD_STATUS_WORDS = {
    COMPLETED: _("Completed: the 3DS Method's browser data arrived before the AReq"),
    MISSING: _("Missing: the 3DS Server said it ran (threeDSCompInd Y) but no data arrived"),
    NOT_COMPLETED: _("Not completed (threeDSCompInd N)"),
    UNAVAILABLE: _("Not available for this card range (threeDSCompInd U)"),
}


def method_status_text(status: str) -> str:
    return METHOD_STATUS_WORDS.get(status, status) if status else "—"

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class BadMethodData(Exception):
    """threeDSMethodData we will not act on: the page says so, and notifies no one."""


# ---------------------------------------------------------------- the 3DS Server's threeDSMethodData


def b64url_json_decode(raw: str, *, max_chars: int) -> dict:
    try:
        return base64url_json_decode(raw, max_chars=max_chars)
    except NotBase64urlJson as exc:
        raise BadMethodData(str(exc)) from None


def notification_url_allowed(url: str) -> bool:
    """https, or plain http to this machine in development (DEBUG or OUTBOUND_ALLOW_PRIVATE, as
    the outbound guard lets dev reach private addresses). The page posts there: anything else
    (javascript:, data:, a public http) is refused."""
    if not isinstance(url, str) or not url or len(url) > MAX_NOTIFICATION_URL_CHARS or any(c in url for c in "\x00\r\n\t "):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return False
    if not parts.hostname or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return True
    dev = settings.DEBUG or settings.OUTBOUND_ALLOW_PRIVATE
    return dev and parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS


def method_data_read(raw: str) -> tuple[str, str]:
    """The form field threeDSMethodData → (threeDSServerTransID, threeDSMethodNotificationURL)."""
    data = b64url_json_decode(raw, max_chars=MAX_METHOD_DATA_CHARS)
    server_trans_id, url = data.get("threeDSServerTransID"), data.get("threeDSMethodNotificationURL")
    if not uuid36(server_trans_id, None):
        raise BadMethodData("threeDSServerTransID missing or malformed")
    if not notification_url_allowed(url):
        raise BadMethodData("threeDSMethodNotificationURL missing or not allowed")
    return server_trans_id.lower(), url


def notification_data(server_trans_id: str) -> str:
    """What the page posts to threeDSMethodNotificationURL as threeDSMethodData."""
    return base64url_json_encode({"threeDSServerTransID": server_trans_id})


def collect_token(server_trans_id: str) -> str:
    return signing.dumps(server_trans_id, salt=COLLECT_TOKEN_SALT, compress=False)


def collect_token_read(token) -> str | None:
    if not isinstance(token, str) or len(token) > 256:
        return None
    try:
        value = signing.loads(token, salt=COLLECT_TOKEN_SALT, max_age=COLLECT_TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    return value if uuid36(value, None) else None


# ---------------------------------------------------------------- what the page collects


def _int_between(low: int, high: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _short_text(limit: int):
    return lambda v: isinstance(v, str) and 0 < len(v) <= limit and v.isprintable()


def _languages(v) -> bool:
    return isinstance(v, list) and len(v) <= 16 and all(_short_text(35)(x) for x in v)


def _hex(v) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 64 and all(c in "0123456789abcdef" for c in v)


# The only keys the page may post, and what each may hold.
COLLECTED_KEYS = {
    "screenWidth": _int_between(0, 100_000),
    "screenHeight": _int_between(0, 100_000),
    "colorDepth": _int_between(0, 64),
    "tzOffset": _int_between(-1440, 1440),  # Date.getTimezoneOffset(), as EMV browserTZ
    "language": _short_text(35),
    "languages": _languages,
    "platform": _short_text(64),
    "canvasHash": _hex,
}


def collected_validate(data) -> dict:
    if not isinstance(data, dict) or not data or set(data) - set(COLLECTED_KEYS):
        raise BadMethodData("unknown or no keys")
    for key, value in data.items():
        if not COLLECTED_KEYS[key](value):
            raise BadMethodData(f"{key} invalid")
    return data


def method_data_store(*, server_trans_id: str, data: dict) -> bool:
    """Keep the collected data for the AReq. The first post for an id wins (a reload or a replay
    cannot replace what the AReq will compare); False when one was already kept."""
    try:
        with transaction.atomic():
            ThreeDSMethodData.objects.create(three_ds_server_trans_id=uuid.UUID(server_trans_id), data=data)
    except IntegrityError:
        return False
    return True


def method_data_sweep(*, now=None) -> int:
    """Scheduled (with the challenge timeouts): drop what no AReq may read any more."""
    now = now or timezone.now()
    return ThreeDSMethodData.objects.filter(created_at__lt=now - METHOD_DATA_TTL).delete()[0]


# ---------------------------------------------------------------- the AReq


def method_status(areq: dict, *, channel: str, data: dict | None) -> str:
    """three_ds_method for the transaction: browser channel only, from threeDSCompInd and
    whether the page's data arrived (within METHOD_DATA_TTL)."""
    if channel != BROWSER:
        return ""
    indicator = areq.get("threeDSCompInd", "")
    if indicator == "Y":
        return COMPLETED if data else MISSING
    return _BY_COMP_IND.get(indicator, "")


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def browser_mismatches(areq: dict, data: dict) -> list[str]:
    """The AReq's browser elements that disagree with what the page saw in the same browser.
    Elements absent on either side are not compared."""
    pairs = (
        ("browserScreenWidth", "screenWidth"),
        ("browserScreenHeight", "screenHeight"),
        ("browserColorDepth", "colorDepth"),
        ("browserTZ", "tzOffset"),
    )
    found = []
    for element, key in pairs:
        ours, theirs = data.get(key), _as_int(areq.get(element))
        if ours is not None and theirs is not None and ours != theirs:
            found.append(element)
    language, ours = areq.get("browserLanguage"), data.get("language")
    if isinstance(language, str) and language and isinstance(ours, str) and language.lower() != ours.lower():
        found.append("browserLanguage")
    return found
