"""EMV 3DS messages as the parties around the ACS build them: valid by default, any element
overridable (an override of None removes the element)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timezone

from apps.threeds.app_crypto import acs_ephem_key_new, ephem_pub_key_jwk

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
APP, BROWSER, THREE_RI = "01", "02", "03"  # deviceChannel


def b64url_encode(message: dict) -> str:
    """The CReq/CRes form field encoding: base64url of the JSON, without padding."""
    return base64.urlsafe_b64encode(json.dumps(message, separators=(",", ":")).encode()).rstrip(b"=").decode()


def b64url_decode(value: str) -> dict:
    value = value.strip()
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def mask_pan(pan: str) -> str:
    return "•" * (len(pan) - 4) + pan[-4:]


def _apply(message: dict, overrides: dict) -> dict:
    for key, value in overrides.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    return message


def areq(*, pan: str = "4111111111111111", channel: str = BROWSER, category: str = "01", version: str = "2.2.0",
         **overrides) -> dict:
    """An AReq of a 3DS Server for a JPY 1500 purchase at Tokyo Books (category 01: payment; 02:
    non-payment), for the app (01), browser (02) or 3RI (03) channel."""
    message = {
        "messageType": "AReq",
        "messageVersion": version,
        "threeDSServerTransID": str(uuid.uuid4()),
        "dsTransID": str(uuid.uuid4()),
        "threeDSServerRefNumber": "3DS_LOA_SER_TEST_020200_00001",
        "threeDSServerURL": "https://3dss.example/notify",
        "dsReferenceNumber": "DS_LOA_TEST_00001",
        "dsURL": "https://ds.example/rreq",
        "deviceChannel": channel,
        "messageCategory": category,
        "acctNumber": pan,
        "threeDSRequestorID": "requestor-1",
        "threeDSRequestorName": "Tokyo Books",
        "threeDSRequestorURL": "https://merchant.example",
        "merchantName": "Tokyo Books",
        "threeDSRequestorAuthenticationInd": "01",
        "threeDSRequestorChallengeInd": "01",
        "acquirerBIN": "400551",
        "acquirerMerchantID": "merchant-001",
        "mcc": "5942",
        "merchantCountryCode": "392",
        "purchaseAmount": "1500",
        "purchaseCurrency": "392",
        "purchaseExponent": "0",
        "purchaseDate": datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"),
        "cardExpiryDate": "3012",
    }
    if channel == BROWSER:
        message.update(
            threeDSCompInd="Y",
            notificationURL="https://merchant.example/3ds/notify",
            browserAcceptHeader="text/html",
            browserUserAgent="Mozilla/5.0",
            browserLanguage="ja-JP",
            browserJavascriptEnabled=True,
            browserJavaEnabled=False,
            browserColorDepth="24",
            browserScreenHeight="1080",
            browserScreenWidth="1920",
            browserTZ="-540",
            browserIP="192.0.2.10",
        )
    elif channel == APP:
        message.update(
            sdkAppID=str(uuid.uuid4()),
            sdkTransID=str(uuid.uuid4()),
            sdkReferenceNumber="SDK_TEST_0001",
            sdkMaxTimeout="05",
            # A real P-256 point (an invalid one is Erro 203); a caller that will open the
            # session (the app challenge) passes its own key's public JWK instead.
            sdkEphemPubKey=ephem_pub_key_jwk(acs_ephem_key_new()),
            deviceRenderOptions={"sdkInterface": "03", "sdkUiType": ["01", "02", "03", "04", "05"]},
            threeDSRequestorAppURL="https://merchant.example/app",
        )
    elif channel == THREE_RI:
        message.update(threeRIInd="01")
        message.pop("threeDSRequestorAuthenticationInd")
    if category == "02":
        for key in ("purchaseAmount", "purchaseCurrency", "purchaseExponent", "purchaseDate"):
            message.pop(key)
    return _apply(message, overrides)


def app_creq(areq: dict, acs_trans_id: str, counter: int, **fields) -> dict:
    """The 3DS SDK's JSON CReq number `counter` (sdkCounterStoA) of this AReq's challenge."""
    return _apply({
        "messageType": "CReq",
        "messageVersion": areq["messageVersion"],
        "threeDSServerTransID": areq["threeDSServerTransID"],
        "acsTransID": acs_trans_id,
        "sdkTransID": areq["sdkTransID"],
        "sdkCounterStoA": f"{counter:03d}",
    }, fields)


def browser_creq(areq: dict, acs_trans_id: str, *, window: str = "05", **overrides) -> dict:
    """The CReq a 3DS Server posts (base64url, in the `creq` field) into the challenge iframe."""
    return _apply({
        "threeDSServerTransID": areq["threeDSServerTransID"],
        "acsTransID": acs_trans_id,
        "challengeWindowSize": window,
        "messageVersion": areq["messageVersion"],
        "messageType": "CReq",
    }, overrides)


def rres_for(rreq: dict, results_status: str = "01") -> dict:
    """The DS's answer to an RReq (resultsStatus 01: received)."""
    rres = {
        "messageType": "RRes",
        "messageVersion": rreq.get("messageVersion", "2.2.0"),
        "threeDSServerTransID": rreq.get("threeDSServerTransID"),
        "acsTransID": rreq.get("acsTransID"),
        "dsTransID": rreq.get("dsTransID"),
        "resultsStatus": results_status,
    }
    if rreq.get("sdkTransID"):
        rres["sdkTransID"] = rreq["sdkTransID"]
    return rres


def wrong_code(code: str) -> str:
    """A code of the same length that is not this one."""
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))
