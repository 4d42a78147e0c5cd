"""The EMV 3-D Secure codes this ACS uses, defined once (EMV 3DS Protocol and Core Functions
Specification, annex A; SPEC §3). Every module that sends or reads one of these values imports it
from here, so a code has one name and the tables below are the only place to check against the
specification (tests/threeds/test_emv.py does).

Names keep the EMV meaning; where the SPEC uses a code for a situation the EMV name does not
suggest, the comment says so.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from apps.core.pan import AMEX, CARTES_BANCAIRES, DISCOVER, JCB, MASTERCARD, VISA

# ---------------------------------------------------------------- message versions and context

@dataclass(frozen=True)
class VersionRules:
    """What differs between the supported messageVersions, for this ACS. Code compares these
    flags, never version strings, so that a new version is one row of VERSION_RULES."""

    # Which version's code lists (threeDSRequestorAuthenticationInd, threeDSRequestorChallengeInd,
    # threeRIInd) the AReq is checked against (messages.by_version).
    code_lists: str
    # Browser: browserJavascriptEnabled required; Java, colour depth, screen and TZ required only
    # when it is true. Before 2.2.0 those five were always required.
    javascript_gated_browser: bool
    # RReq: authenticationMethod, and acsRenderingType on the app channel (2.2.0 elements).
    rreq_authentication_method: bool
    rreq_acs_rendering_type: bool
    # AReq: the optional elements 2.3.1 added are format-checked (messages.AREQ_ELEMENTS_2_3_1).
    areq_2_3_1_elements: bool
    # Decoupled authentication (threeDSRequestorDecReqInd / DecMaxTime, ARes D): 2.2.0 elements.
    # Before, the elements do not exist: unchecked and ignored like any unknown element.
    decoupled: bool = False


VERSION_RULES: dict[str, VersionRules] = {
    "2.1.0": VersionRules(code_lists="2.1.0", javascript_gated_browser=False, rreq_authentication_method=False,
                          rreq_acs_rendering_type=False, areq_2_3_1_elements=False),
    "2.2.0": VersionRules(code_lists="2.2.0", javascript_gated_browser=True, rreq_authentication_method=True,
                          rreq_acs_rendering_type=True, areq_2_3_1_elements=False, decoupled=True),
    # 2.3.1 follows the 2.2.0 rules here, plus its new optional AReq elements. Its code lists are
    # read as 2.2.0's: values 2.3.1 may have added are refused (203) rather than guessed.
    "2.3.1": VersionRules(code_lists="2.2.0", javascript_gated_browser=True, rreq_authentication_method=True,
                          rreq_acs_rendering_type=True, areq_2_3_1_elements=True, decoupled=True),
}
# Oldest first: the last is the one an Erro names when the message's own is not supported.
SUPPORTED_VERSIONS = tuple(VERSION_RULES)

# deviceChannel
APP, BROWSER, THREE_RI = "01", "02", "03"
# messageCategory
PAYMENT, NON_PAYMENT = "01", "02"

# ---------------------------------------------------------------- transStatus

TRANS_STATUSES = ("Y", "A", "N", "U", "R", "C", "D")
SUCCESSFUL_STATUSES = ("Y", "A")  # the statuses that carry an authenticationValue
# ARes statuses after which the cardholder is asked: a challenge (C) or decoupled authentication
# (D); the analysts count both as challenged.
CHALLENGED_ARES_STATUSES = ("C", "D")

# What staff read (translatable; trans_status_text below).
TRANS_STATUS_DESCRIPTIONS = {
    "Y": _("Authenticated"),
    "A": _("Attempted (proof of attempt)"),
    "N": _("Not authenticated / declined"),
    "U": _("Authentication could not be performed"),
    "R": _("Rejected by the issuer"),
    "C": _("Challenge required"),
    "D": _("Decoupled authentication"),
}

# ---------------------------------------------------------------- transStatusReason (table A.4)

REASON_AUTH_FAILED = "01"  # card authentication failed; also a cardholder cancel or a refused OOB
REASON_FREQUENCY_LIMIT = "04"  # exceeds authentication frequency limit (SPEC: card velocity)
REASON_CARD_EXPIRED = "05"
REASON_NO_CARD_RECORD = "08"  # also a PAN outside every BIN grant
REASON_LOST_STOLEN = "10"  # EMV: stolen card (SPEC: card lost_stolen)
REASON_TRANSACTION_NOT_PERMITTED = "12"  # card suspended or closed
REASON_NO_METHOD = "13"  # EMV: cardholder not enrolled in service (SPEC: no challenge method)
REASON_TIMEOUT = "14"  # transaction timed out at the ACS
REASON_TOO_MANY_ATTEMPTS = "19"  # exceeds ACS maximum challenges (SPEC: OTP attempts exhausted)
REASON_3RI_NOT_SUPPORTED = "21"  # a challenge needed without the cardholder present
REASON_ACS_TECHNICAL = "22"  # internal failure after a valid AReq

REASON_DESCRIPTIONS = {
    REASON_AUTH_FAILED: _("Card authentication failed"),
    REASON_FREQUENCY_LIMIT: _("Exceeds authentication frequency limit"),
    REASON_CARD_EXPIRED: _("Expired card"),
    REASON_NO_CARD_RECORD: _("No card record"),
    REASON_LOST_STOLEN: _("Stolen card"),
    REASON_TRANSACTION_NOT_PERMITTED: _("Transaction not permitted to cardholder"),
    REASON_NO_METHOD: _("Cardholder not enrolled in service"),
    REASON_TIMEOUT: _("Transaction timed out at the ACS"),
    REASON_TOO_MANY_ATTEMPTS: _("Exceeds ACS maximum challenges"),
    REASON_3RI_NOT_SUPPORTED: _("3RI transaction not supported"),
    REASON_ACS_TECHNICAL: _("ACS technical issue"),
}


def trans_status_text(status: str | None) -> str:
    """`"N"` → "N — Not authenticated / declined" in the active language; unknown codes as they are."""
    if not status:
        return "—"
    meaning = TRANS_STATUS_DESCRIPTIONS.get(status)
    return f"{status} — {meaning}" if meaning else status


def reason_text(code: str | None) -> str:
    """transStatusReason `"13"` → "13 — Cardholder not enrolled in service" in the active language."""
    if not code:
        return "—"
    meaning = REASON_DESCRIPTIONS.get(code)
    return f"{code} — {meaning}" if meaning else code


# ---------------------------------------------------------------- challengeCancel

CANCEL_BY_CARDHOLDER = "01"
CANCEL_TIMEOUT_OTHER = "04"  # transaction timed out at the ACS: the whole challenge took too long
CANCEL_TIMEOUT_FIRST_CREQ = "05"  # transaction timed out at the ACS: no first CReq in time
CHALLENGE_CANCEL_VALUES = ("01", "02", "03", "04", "05", "06", "07", "08")  # what a CReq may carry

# ---------------------------------------------------------------- challenge presentation

CHALLENGE_WINDOW_SIZES = ("01", "02", "03", "04", "05")  # browser challengeWindowSize
FULL_PAGE_WINDOW = "05"
AUTHENTICATION_TYPE_DYNAMIC = "02"  # an OTP
AUTHENTICATION_TYPE_OOB = "03"
AUTHENTICATION_TYPE_DECOUPLED = "04"  # 2.2.0
ACS_DEC_CON_IND_YES = "Y"  # ARes acsDecConInd: the ACS confirms decoupled authentication
ACS_UI_TYPE_TEXT = "01"  # acsUiType / acsUiTemplate: an OTP entry
ACS_UI_TYPE_OOB = "04"

# ---------------------------------------------------------------- Erro errorCode (table A.4)

ERROR_MESSAGE_INVALID = "101"
ERROR_VERSION_NOT_SUPPORTED = "102"
ERROR_REQUIRED_ELEMENT_MISSING = "201"
ERROR_FORMAT_INVALID = "203"
ERROR_TRANSACTION_ID_NOT_RECOGNISED = "301"
ERROR_DECRYPTION_FAILURE = "302"
ERROR_ACCESS_DENIED = "303"
ERROR_TIMEOUT = "402"
ERROR_TRANSIENT_FAILURE = "403"
ERROR_PERMANENT_FAILURE = "404"

ERROR_DESCRIPTIONS = {
    ERROR_MESSAGE_INVALID: "Message received invalid",
    ERROR_VERSION_NOT_SUPPORTED: "Message version number not supported",
    ERROR_REQUIRED_ELEMENT_MISSING: "Required data element missing",
    ERROR_FORMAT_INVALID: "Format of one or more data elements is invalid according to the specification",
    ERROR_TRANSACTION_ID_NOT_RECOGNISED: "Transaction ID not recognised",
    ERROR_DECRYPTION_FAILURE: "Data decryption failure",
    ERROR_ACCESS_DENIED: "Access denied, invalid endpoint",
    ERROR_TIMEOUT: "Transaction timed out",
    ERROR_TRANSIENT_FAILURE: "Transient system failure",
    ERROR_PERMANENT_FAILURE: "Permanent system failure",
}

# ---------------------------------------------------------------- ECI per network × transStatus (SPEC §3.6)

_ECI_VISA_LIKE = {"Y": "05", "A": "06", "N": "07", "U": "07", "R": "07"}
ECI = {
    VISA: _ECI_VISA_LIKE,
    AMEX: _ECI_VISA_LIKE,
    JCB: _ECI_VISA_LIKE,
    DISCOVER: _ECI_VISA_LIKE,
    MASTERCARD: {"Y": "02", "A": "01", "N": "00", "U": "00", "R": "00"},
}
# Cartes Bancaires has no table of its own: a co-badged card uses its co-badge's.
ECI_FROM_CO_BADGE = CARTES_BANCAIRES
ECI_DEFAULT_NETWORK = VISA  # a network without a table (none today) reads Visa's
