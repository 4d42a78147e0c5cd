"""EMV 3DS message validation (AReq, the app and browser CReqs), table-driven, and the Erro message.

Each row of a table names an element, its format, and when it is required (by message version,
device channel and message category); what differs between versions is read from
emv.VERSION_RULES, never from a version string here. A message is checked against every row; all
offending elements are reported together, missing ones (201) before malformed ones (203).
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from urllib.parse import urlsplit

from apps.core.outbound_guard import ds_url_allowed
from apps.threeds.emv import (  # noqa: F401 (the channel and category names are read from here too)
    APP,
    BROWSER,
    CHALLENGE_CANCEL_VALUES,
    CHALLENGE_WINDOW_SIZES,
    ERROR_ACCESS_DENIED,
    ERROR_DESCRIPTIONS,
    ERROR_FORMAT_INVALID,
    ERROR_MESSAGE_INVALID,
    ERROR_REQUIRED_ELEMENT_MISSING,
    ERROR_VERSION_NOT_SUPPORTED,
    NON_PAYMENT,
    PAYMENT,
    SUPPORTED_VERSIONS,
    THREE_RI,
    VERSION_RULES,
)


@dataclass(frozen=True)
class Context:
    version: str
    channel: str
    category: str


Check = Callable[[Any, Context], bool]
Condition = Callable[[Context], bool]


@dataclass(frozen=True)
class Element:
    name: str
    check: Check
    required: Condition = lambda ctx: False


# ---------------------------------------------------------------- formats

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def uuid36(value, ctx) -> bool:
    return isinstance(value, str) and bool(_UUID.match(value))


def digits(low: int, high: int) -> Check:
    pattern = re.compile(r"^[0-9]{%d,%d}$" % (low, high))
    return lambda value, ctx: isinstance(value, str) and bool(pattern.match(value))


def text(low: int, high: int) -> Check:
    return lambda value, ctx: isinstance(value, str) and low <= len(value) <= high and value.isprintable()


def one_of(*choices: str) -> Check:
    return lambda value, ctx: isinstance(value, str) and value in choices


def by_version(**per_version: tuple[str, ...]) -> Check:
    """A code list per version's code_lists (emv.VERSION_RULES): 2.3.1 reads 2.2.0's list."""
    table = {k.replace("_", "."): v for k, v in per_version.items()}
    return lambda value, ctx: isinstance(value, str) and value in table.get(VERSION_RULES[ctx.version].code_lists, ())


def since_2_3_1(check: Check) -> Check:
    """An element 2.3.1 added: checked in the versions that define it; in an older message it is an
    unknown element, ignored like any other."""
    return lambda value, ctx: not VERSION_RULES[ctx.version].areq_2_3_1_elements or check(value, ctx)


def since_2_2_0_decoupled(check: Check) -> Check:
    """A decoupled-authentication element (2.2.0): in a 2.1.0 message it is an unknown element,
    ignored like any other (and the AReq is decided as if it were absent, areq.py)."""
    return lambda value, ctx: not VERSION_RULES[ctx.version].decoupled or check(value, ctx)


def dec_max_time(value, ctx) -> bool:
    """threeDSRequestorDecMaxTime: minutes, 5 digits, 00001 to 10080 (seven days)."""
    return isinstance(value, str) and len(value) == 5 and value.isdigit() and 1 <= int(value) <= 10080


def url(value, ctx) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= 2048:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def boolean(value, ctx) -> bool:
    return isinstance(value, bool)


def json_object(value, ctx) -> bool:
    return isinstance(value, dict)


def sdk_ephem_pub_key(value, ctx) -> bool:
    """A P-256 public JWK whose point is on the curve (SPEC §3.3.1: else Erro 203)."""
    from apps.threeds.app_crypto import InvalidSdkEphemPubKey, sdk_ephem_pub_key_load

    try:
        sdk_ephem_pub_key_load(value)
    except InvalidSdkEphemPubKey:
        return False
    return True


def date_time_14(value, ctx) -> bool:
    if not (isinstance(value, str) and len(value) == 14 and value.isdigit()):
        return False
    try:  # fixed width: what strptime("%Y%m%d%H%M%S") accepts here, without its regex machinery
        datetime(int(value[:4]), int(value[4:6]), int(value[6:8]), int(value[8:10]), int(value[10:12]), int(value[12:]))
    except ValueError:
        return False
    return True


def amount(value, ctx) -> bool:
    # EMV allows 48 digits; amounts are kept as 64-bit integers, far above any real purchase.
    return isinstance(value, str) and bool(re.match(r"^[0-9]{1,48}$", value)) and int(value) <= 2**63 - 1


def yyyymmdd(value, ctx) -> bool:
    if not (isinstance(value, str) and len(value) == 8 and value.isdigit()):
        return False
    try:
        datetime(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def yymm(value, ctx) -> bool:
    return isinstance(value, str) and len(value) == 4 and value.isdigit() and 1 <= int(value[2:]) <= 12


def device_render_options(value, ctx) -> bool:
    if not isinstance(value, dict):
        return False
    ui = value.get("sdkUiType")
    return (
        value.get("sdkInterface") in ("01", "02", "03")
        and isinstance(ui, list)
        and bool(ui)
        and all(u in ("01", "02", "03", "04", "05") for u in ui)
    )


def sdk_max_timeout(value, ctx) -> bool:
    return isinstance(value, str) and len(value) == 2 and value.isdigit() and int(value) >= 5


def color_depth(value, ctx) -> bool:
    return value in ("1", "4", "8", "15", "16", "24", "32", "48")


def browser_tz(value, ctx) -> bool:
    return isinstance(value, str) and bool(re.match(r"^[+-]?[0-9]{1,4}$", value))


# ---------------------------------------------------------------- conditions


def always(ctx) -> bool:
    return True


def channel(*channels: str) -> Condition:
    return lambda ctx: ctx.channel in channels


def payment(ctx) -> bool:
    return ctx.category == PAYMENT


def browser_v21_or_js(ctx) -> bool:
    # 2.2.0 made the screen and Java details depend on browserJavascriptEnabled (checked below).
    return ctx.channel == BROWSER and not VERSION_RULES[ctx.version].javascript_gated_browser


def browser_javascript_required(ctx) -> bool:
    return ctx.channel == BROWSER and VERSION_RULES[ctx.version].javascript_gated_browser


AREQ_ELEMENTS: list[Element] = [
    Element("threeDSServerTransID", uuid36, always),
    Element("dsTransID", uuid36, always),
    Element("deviceChannel", one_of(APP, BROWSER, THREE_RI), always),
    Element("messageCategory", one_of(PAYMENT, NON_PAYMENT), always),
    Element("acctNumber", digits(13, 19), always),
    Element("threeDSServerRefNumber", text(1, 32), always),
    Element("dsReferenceNumber", text(1, 32), always),
    Element("dsURL", url, always),
    Element("threeDSRequestorID", text(1, 35), always),
    Element("threeDSRequestorName", text(1, 40), always),
    Element("threeDSRequestorURL", url, always),
    Element("merchantName", text(1, 40), always),
    Element("threeDSServerURL", url),
    Element("cardExpiryDate", yymm),
    Element("threeDSRequestorAuthenticationInd", by_version(**{"2_1_0": ("01", "02", "03", "04", "05", "06"), "2_2_0": ("01", "02", "03", "04", "05", "06")}), channel(APP, BROWSER)),
    Element("threeDSRequestorChallengeInd", by_version(**{"2_1_0": ("01", "02", "03", "04"), "2_2_0": ("01", "02", "03", "04", "05", "06", "07", "08", "09")})),
    Element("threeRIInd", by_version(**{"2_1_0": ("01", "02", "03", "04", "05"), "2_2_0": tuple(f"{i:02d}" for i in range(1, 12))}), channel(THREE_RI)),
    Element("purchaseAmount", amount, payment),
    Element("purchaseCurrency", digits(3, 3), payment),
    Element("purchaseExponent", digits(1, 1), payment),
    Element("purchaseDate", date_time_14, payment),
    Element("acquirerBIN", text(1, 11), payment),
    Element("acquirerMerchantID", text(1, 35), payment),
    Element("mcc", digits(4, 4), payment),
    Element("merchantCountryCode", digits(3, 3), payment),
    Element("transType", one_of("01", "03", "10", "11", "28")),
    # Browser
    Element("threeDSCompInd", one_of("Y", "N", "U"), channel(BROWSER)),
    Element("notificationURL", url, channel(BROWSER)),
    Element("browserAcceptHeader", text(1, 2048), channel(BROWSER)),
    Element("browserUserAgent", text(1, 2048), channel(BROWSER)),
    Element("browserLanguage", text(1, 35), channel(BROWSER)),
    Element("browserIP", text(1, 45)),
    Element("browserJavascriptEnabled", boolean, browser_javascript_required),
    Element("browserJavaEnabled", boolean, browser_v21_or_js),
    Element("browserColorDepth", color_depth, browser_v21_or_js),
    Element("browserScreenHeight", digits(1, 6), browser_v21_or_js),
    Element("browserScreenWidth", digits(1, 6), browser_v21_or_js),
    Element("browserTZ", browser_tz, browser_v21_or_js),
    # App
    Element("sdkAppID", uuid36, channel(APP)),
    Element("sdkTransID", uuid36, channel(APP)),
    Element("sdkReferenceNumber", text(1, 32), channel(APP)),
    Element("sdkMaxTimeout", sdk_max_timeout, channel(APP)),
    Element("sdkEphemPubKey", sdk_ephem_pub_key, channel(APP)),
    Element("sdkEncData", text(1, 64000)),
    Element("deviceRenderOptions", device_render_options, channel(APP)),
    Element("threeDSRequestorAppURL", url),
    # Decoupled authentication (SPEC §3.9); DecMaxTime is required when DecReqInd is Y (below).
    Element("threeDSRequestorDecReqInd", since_2_2_0_decoupled(one_of("Y", "N"))),
    Element("threeDSRequestorDecMaxTime", since_2_2_0_decoupled(dec_max_time)),
]

# Optional elements 2.3.1 added, checked only where the format is clear enough to refuse a message
# over it: "Y" only, or the format of the 2.2.0 element it mirrors. Written from public
# descriptions of 2.3.1, not checked against the EMVCo text. The other new ones (deviceBindingStatus,
# acquirerCountryCodeSource, sellerInfo, taxId, recurringInd, ...) are accepted unchecked, as
# unlisted 2.2.0 elements are: this ACS reads none of them.
AREQ_ELEMENTS_2_3_1: list[Element] = [
    # Y = the 3DS Requestor supports SPC; the only value.
    Element("threeDSRequestorSpcSupport", since_2_3_1(one_of("Y"))),
    # 2.2.0's whiteListStatus renamed, same values.
    Element("trustListStatus", since_2_3_1(one_of("Y", "N", "E", "P", "R", "U"))),
    # Formats as their 2.2.0 counterparts: appIp as browserIP, payeeOrigin as a URL, the recurring
    # amount as purchaseAmount/Currency/Exponent, recurringDate as recurringExpiry (YYYYMMDD).
    Element("appIp", since_2_3_1(text(1, 45))),
    Element("payeeOrigin", since_2_3_1(url)),
    Element("recurringAmount", since_2_3_1(amount)),
    Element("recurringCurrency", since_2_3_1(digits(3, 3))),
    Element("recurringExponent", since_2_3_1(digits(1, 1))),
    Element("recurringDate", since_2_3_1(yyyymmdd)),
]
AREQ_ELEMENTS += AREQ_ELEMENTS_2_3_1

# With browserJavascriptEnabled true (2.2.0), these become required.
_JS_ELEMENTS = ("browserJavaEnabled", "browserColorDepth", "browserScreenHeight", "browserScreenWidth", "browserTZ")


class MessageError(Exception):
    """A message that gets an Erro instead of a response."""

    def __init__(self, code: str, detail: str, *, message: dict | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.message = message if isinstance(message, dict) else {}


MAX_NESTING = 16  # no EMV element nests deeper; deeper input is hostile


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no storage layer accepts it
        return False
    return True


def _suspicious(value, *, limit: int = MAX_NESTING) -> bool:
    """NUL or a lone surrogate anywhere (never valid, and not storable) or absurd nesting. Iterative,
    so hostile depth cannot exhaust the stack."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, str):
            # isascii() is a flag lookup: only other strings can hold a surrogate.
            if "\x00" in item or (not item.isascii() and not _utf8(item)):
                return True
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def validate_areq(message: Any) -> Context:
    """Raise MessageError (101, 102, 201, 203, 303) or return the message's context."""
    if not isinstance(message, dict) or message.get("messageType") != "AReq":
        raise MessageError(ERROR_MESSAGE_INVALID, "messageType", message=message)
    version = message.get("messageVersion")
    if version is None:
        raise MessageError(ERROR_REQUIRED_ELEMENT_MISSING, "messageVersion", message=message)
    if version not in SUPPORTED_VERSIONS:
        raise MessageError(ERROR_VERSION_NOT_SUPPORTED, "messageVersion", message=message)
    ctx = Context(version=version, channel=str(message.get("deviceChannel", "")), category=str(message.get("messageCategory", "")))
    missing, invalid = [], []
    for element in AREQ_ELEMENTS:
        value = message.get(element.name)
        required = element.required(ctx) or (
            element.name in _JS_ELEMENTS and ctx.channel == BROWSER and message.get("browserJavascriptEnabled") is True
        ) or (
            element.name == "threeDSRequestorDecMaxTime" and VERSION_RULES[ctx.version].decoupled
            and message.get("threeDSRequestorDecReqInd") == "Y"
        )
        if value is None or value == "":
            if required:
                missing.append(element.name)
        elif not element.check(value, ctx):
            invalid.append(element.name)
    if _suspicious(message, limit=MAX_NESTING + 1):  # one pass over all; which elements only if needed
        invalid += [name.replace("\x00", "\\0") for name, value in message.items() if name not in invalid and (_suspicious(name) or _suspicious(value))]
    if missing:
        raise MessageError(ERROR_REQUIRED_ELEMENT_MISSING, ",".join(missing), message=message)
    if invalid:
        raise MessageError(ERROR_FORMAT_INVALID, ",".join(invalid), message=message)
    if not ds_url_allowed(message["dsURL"]):
        # Not a DS this ACS answers to: the RReq would go there (SSRF), so nothing is stored.
        raise MessageError(ERROR_ACCESS_DENIED, "dsURL", message=message)
    return ctx


# ---------------------------------------------------------------- CReq (SPEC §3.2, §3.3)

MAX_SESSION_DATA_CHARS = 1024  # threeDSSessionData: variable, at most 1024 characters


def sdk_counter(value, ctx) -> bool:
    return isinstance(value, str) and len(value) == 3 and value.isascii() and value.isdigit() and int(value) <= 255


def challenge_data_entry(value, ctx) -> bool:
    # Not `text`: what the cardholder typed is checked by the challenge, not refused as a format.
    return isinstance(value, str) and 1 <= len(value) <= 45


def app_url(value, ctx) -> bool:
    # threeDSRequestorAppURL is an app link (a custom scheme), not only http(s).
    return isinstance(value, str) and 0 < len(value) <= 256 and "://" in value


APP_CREQ_ELEMENTS: list[Element] = [
    Element("threeDSServerTransID", uuid36, always),
    Element("acsTransID", uuid36, always),
    Element("sdkTransID", uuid36, always),
    Element("sdkCounterStoA", sdk_counter, always),
    Element("challengeDataEntry", challenge_data_entry),
    Element("resendChallenge", one_of("Y", "N")),
    Element("oobContinue", boolean),
    Element("challengeCancel", one_of(*CHALLENGE_CANCEL_VALUES)),
    Element("challengeNoEntry", one_of("Y")),
    Element("threeDSRequestorAppURL", app_url),
]


def validate_app_creq(message: Any) -> None:
    """The app channel's CReq (SPEC §3.3), before anything is looked up: raise MessageError (101,
    102, 201, 203). An optional element that is present is checked even when empty: an empty
    challengeDataEntry is not a guess at the code."""
    if not isinstance(message, dict) or message.get("messageType") != "CReq":
        raise MessageError(ERROR_MESSAGE_INVALID, "messageType", message=message)
    version = message.get("messageVersion")
    if version not in SUPPORTED_VERSIONS:
        code = ERROR_VERSION_NOT_SUPPORTED if version else ERROR_REQUIRED_ELEMENT_MISSING
        raise MessageError(code, "messageVersion", message=message)
    ctx = Context(version=version, channel=APP, category="")
    missing = [e.name for e in APP_CREQ_ELEMENTS if e.required(ctx) and message.get(e.name) in (None, "")]
    if missing:
        raise MessageError(ERROR_REQUIRED_ELEMENT_MISSING, ",".join(missing), message=message)
    invalid = [e.name for e in APP_CREQ_ELEMENTS if e.name in message and not e.check(message[e.name], ctx)]
    if invalid:
        raise MessageError(ERROR_FORMAT_INVALID, ",".join(invalid), message=message)


def validate_browser_creq(creq: Any, *, transaction_version: str, session_data: str) -> None:
    """The browser's first CReq (SPEC §3.2) for a transaction already found by its ids: raise
    MessageError (101, 102, 201, 203). The CReq must keep the AReq's messageVersion;
    threeDSSessionData comes beside it in the form and is checked here too."""
    if not isinstance(creq, dict) or creq.get("messageType") != "CReq":
        raise MessageError(ERROR_MESSAGE_INVALID, "messageType", message=creq)
    missing = [name for name in ("messageVersion", "challengeWindowSize") if creq.get(name) in (None, "")]
    if missing:
        raise MessageError(ERROR_REQUIRED_ELEMENT_MISSING, ",".join(missing), message=creq)
    version = creq.get("messageVersion")
    if version not in SUPPORTED_VERSIONS:
        raise MessageError(ERROR_VERSION_NOT_SUPPORTED, "messageVersion", message=creq)
    invalid = []
    if version != transaction_version:
        invalid.append("messageVersion")
    if creq.get("challengeWindowSize") not in CHALLENGE_WINDOW_SIZES:
        invalid.append("challengeWindowSize")
    if len(session_data) > MAX_SESSION_DATA_CHARS:
        invalid.append("threeDSSessionData")
    if invalid:
        raise MessageError(ERROR_FORMAT_INVALID, ",".join(invalid), message=creq)


def erro(*, code: str, detail: str, message: dict | None = None, message_type: str = "AReq", acs_trans_id: str | None = None) -> dict:
    """The Erro message, echoing the ids that could be read."""
    message = message if isinstance(message, dict) else {}
    version = message.get("messageVersion")
    body = {
        "messageType": "Erro",
        "messageVersion": version if version in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[-1],
        "errorComponent": "A",
        "errorCode": code,
        "errorDescription": ERROR_DESCRIPTIONS.get(code, "Error"),
        "errorDetail": detail[:2048],
        "errorMessageType": message_type,
    }
    for key in ("threeDSServerTransID", "dsTransID", "sdkTransID"):
        if uuid36(message.get(key), None):
            body[key] = message[key]
    if acs_trans_id:
        body["acsTransID"] = str(acs_trans_id)
    return body


# ---------------------------------------------------------------- base64url JSON form fields

class NotBase64urlJson(ValueError):
    """A form field (creq, threeDSMethodData) that is not a base64url-encoded JSON object."""


def base64url_json_encode(message: dict) -> str:
    """EMV: base64url of the JSON, without padding (CRes, threeDSMethodData)."""
    return base64.urlsafe_b64encode(json.dumps(message, separators=(",", ":")).encode()).rstrip(b"=").decode()


def base64url_json_decode(raw: str, *, max_chars: int, standard_alphabet_too: bool = False) -> dict:
    """base64url, padded or not, → JSON object, strictly, or NotBase64urlJson. The decoder quietly
    drops characters outside the alphabet; re-encoding undoes that. `standard_alphabet_too` reads
    +/ as well, which some 3DS Servers send in a CReq and which is unambiguous."""
    raw = (raw or "").strip()
    if not raw or len(raw) > max_chars:
        raise NotBase64urlJson("missing or too long")
    text = raw.rstrip("=")
    if standard_alphabet_too:
        text = text.replace("+", "-").replace("/", "_")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
            raise ValueError("not base64url")
        value = json.loads(data.decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError):  # UnicodeDecodeError is a ValueError
        raise NotBase64urlJson("not base64url JSON") from None
    if not isinstance(value, dict):
        raise NotBase64urlJson("not a JSON object")
    return value
