"""AReq/CReq builders: valid messages by default, any element overridable (None removes it)."""

import uuid

from django.utils import timezone


def areq(*, pan="4111111111111111", channel="02", category="01", version="2.2.0", **overrides) -> dict:
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
        "purchaseDate": timezone.now().strftime("%Y%m%d%H%M%S"),
        "cardExpiryDate": "3012",
    }
    if channel == "02":
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
    elif channel == "01":
        message.update(
            sdkAppID=str(uuid.uuid4()),
            sdkTransID=str(uuid.uuid4()),
            sdkReferenceNumber="SDK_TEST_0001",
            sdkMaxTimeout="05",
            sdkEphemPubKey={"kty": "EC", "crv": "P-256", "x": "x", "y": "y"},
            deviceRenderOptions={"sdkInterface": "03", "sdkUiType": ["01", "02", "03", "04", "05"]},
            threeDSRequestorAppURL="https://merchant.example/app",
        )
    elif channel == "03":
        message.update(threeRIInd="01")
        message.pop("threeDSRequestorAuthenticationInd")
    if category == "02":
        for key in ("purchaseAmount", "purchaseCurrency", "purchaseExponent", "purchaseDate"):
            message.pop(key)
    for key, value in overrides.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    return message
