"""App channel: `POST /3ds/v2/creq`, the 3DS SDK's CReq → CRes, encrypted as EMV requires (SPEC §3.3).

The body is a JWE compact serialisation (alg "dir", kid = acsTransID, enc A128CBC-HS256 or
A128GCM) sealed with the session key the AReq derived (apps.threeds.areq). The kid finds the
challenge; under its lock (apps.threeds.challenge.challenge_app_creq) the sealed session key is
unsealed and the CReq opened and validated (apps.threeds.messages), then today's step runs and the
CRes goes back encrypted with the CReq's enc (`application/jose; charset=UTF-8`).

A CReq that does not open or authenticate (wrong key, tampered tag, a kid that names no app
challenge, a decrypted acsTransID other than the kid), a plain JSON CReq, or a replayed
sdkCounterStoA is a plain JSON Erro 302 and changes nothing; a skipped counter is Erro 303 (a lost
CReq is never silently passed over); an opened CReq that is not valid gets its Erro (201, 203...).
"""

import contextlib
import json
import uuid

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.crypto import Sealed
from apps.core.logging import sensitive
from apps.core.money import format_amount
from apps.threeds import app_crypto
from apps.threeds import challenge as flow
from apps.threeds.emv import (
    ACS_UI_TYPE_OOB,
    ACS_UI_TYPE_TEXT,
    APP,
    ERROR_ACCESS_DENIED,
    ERROR_DECRYPTION_FAILURE,
    ERROR_TRANSACTION_ID_NOT_RECOGNISED,
)
from apps.threeds.messages import MessageError, erro, validate_app_creq
from apps.threeds.models import Challenge
from apps.threeds.views import erro_unless_post

JOSE_CONTENT_TYPE = "application/jose; charset=UTF-8"

TEXTS = {
    "en": {
        "header": "Confirm your purchase",
        "info": "We sent a code to {phone}. Enter it to pay {merchant} {amount}.",
        "label": "Code",
        "submit": "Submit",
        "resend": "Send a new code",
        "wrong": "Wrong code. {left} attempt(s) left.",
        "expired": "The code has expired. Ask for a new one.",
        "resent": "A new code was sent to {phone}.",
        "oob": "Confirm this payment in your banking app.",
        "oob_continue": "I have confirmed",
    },
    "ja": {
        "header": "ご購入の確認",
        "info": "{phone} に認証コードを送信しました。{merchant}（{amount}）へのお支払いのためコードを入力してください。",
        "label": "認証コード",
        "submit": "送信",
        "resend": "コードを再送信",
        "wrong": "コードが正しくありません。残り {left} 回です。",
        "expired": "コードの有効期限が切れました。再送信してください。",
        "resent": "{phone} に新しいコードを送信しました。",
        "oob": "銀行アプリでお支払いを承認してください。",
        "oob_continue": "承認しました",
    },
    "fr": {
        "header": "Confirmez votre achat",
        "info": "Nous avons envoyé un code au {phone}. Saisissez-le pour payer {merchant} {amount}.",
        "label": "Code",
        "submit": "Valider",
        "resend": "Recevoir un nouveau code",
        "wrong": "Code incorrect. Il reste {left} essai(s).",
        "expired": "Le code a expiré. Demandez-en un nouveau.",
        "resent": "Un nouveau code a été envoyé au {phone}.",
        "oob": "Confirmez ce paiement dans votre application bancaire.",
        "oob_continue": "J'ai confirmé",
    },
}


def _erro(code: str, detail: str, message: dict | None, acs_trans_id=None) -> JsonResponse:
    # Always plain JSON: an SDK that cannot open our JWE must still read why.
    return JsonResponse(erro(code=code, detail=detail, message=message, message_type="CReq", acs_trans_id=acs_trans_id))


# A refused sdkCounterStoA: a replayed counter is a CReq that cannot be authenticated (302); a
# skipped one is refused too (303) so that a lost CReq is never silently passed over.
_REFUSED_ERRO = {
    flow.NOT_DECRYPTED: (ERROR_DECRYPTION_FAILURE, "CReq"),
    flow.NOT_RECOGNISED: (ERROR_TRANSACTION_ID_NOT_RECOGNISED, "acsTransID"),
    flow.COUNTER_REPLAYED: (ERROR_DECRYPTION_FAILURE, "sdkCounterStoA"),
    flow.COUNTER_SKIPPED: (ERROR_ACCESS_DENIED, "sdkCounterStoA"),
}


def _plain_json(body: bytes) -> dict | None:
    """A plain JSON CReq's ids, to echo in its Erro 302 (nothing else is read from it)."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


class _Opener:
    """The channel's part of challenge_app_creq, run on the locked challenge: unseal the session
    key, open the CReq, validate it. Keeps what the CRes needs (the key and the enc)."""

    def __init__(self, body: bytes, secrets: contextlib.ExitStack):
        self.body, self.secrets = body, secrets
        self.message: dict | None = None
        self.session_key: bytes | None = None
        self.enc = ""

    def __call__(self, challenge: Challenge) -> flow.AppCReq:
        tx = challenge.transaction
        if tx.device_channel != APP or challenge.app_session_key_blob is None:
            raise flow.AppCReqRefused(flow.NOT_DECRYPTED)  # not an app challenge, or its key is wiped
        try:
            session_key = app_crypto.session_key_unseal(
                Sealed(challenge.app_session_key_id, bytes(challenge.app_session_key_blob)), acs_trans_id=tx.acs_trans_id)
            opened = app_crypto.creq_decrypt(self.body, session_key=session_key, acs_trans_id=tx.acs_trans_id)
        except Exception:
            # A DataDecryptionFailure, or a sealed key that does not open: the same Erro 302.
            raise flow.AppCReqRefused(flow.NOT_DECRYPTED) from None
        message = opened.creq
        code = message.get("challengeDataEntry")
        self.secrets.enter_context(sensitive(code if isinstance(code, str) else None))  # never logged from here on
        self.message = message
        try:
            validate_app_creq(message)
        except MessageError as exc:
            raise flow.AppCReqRefused(flow.INVALID, error=exc) from None
        if message["acsTransID"].lower() != str(tx.acs_trans_id):
            raise flow.AppCReqRefused(flow.NOT_DECRYPTED)  # sealed for this kid, naming another transaction
        self.session_key, self.enc = session_key, opened.enc
        return flow.AppCReq(
            three_ds_server_trans_id=message["threeDSServerTransID"],
            sdk_trans_id=message["sdkTransID"],
            counter=int(message["sdkCounterStoA"]),
            three_ds_requestor_app_url=message.get("threeDSRequestorAppURL", ""),
            cancel=bool(message.get("challengeCancel")),
            resend=message.get("resendChallenge") == "Y",
            code=message.get("challengeDataEntry"),
        )


@csrf_exempt
@erro_unless_post(message_type="CReq")
def creq(request):
    body = request.body
    try:
        acs_trans_id = uuid.UUID(app_crypto.jwe_kid(body))
    except (app_crypto.DataDecryptionFailure, ValueError):
        # Not a JWE with a readable kid (a plain JSON CReq among them): nothing to open it with.
        return _erro(ERROR_DECRYPTION_FAILURE, "CReq", _plain_json(body))
    with contextlib.ExitStack() as secrets:
        opener = _Opener(body, secrets)
        answer = flow.challenge_app_creq(acs_trans_id=acs_trans_id, open_creq=opener)
        if answer.refused == flow.INVALID:
            return _erro(answer.error.code, answer.error.detail, answer.error.message)
        if answer.refused:
            code, detail = _REFUSED_ERRO[answer.refused]
            # The ids are echoed only from a CReq that opened (never from an unauthenticated one).
            return _erro(code, detail, opener.message, acs_trans_id if opener.message else None)
        step = answer.step
        notice = step.message if step.outcome == "resend_refused" else ""
        cres = _cres(answer.challenge, step, notice, answer.acs_counter)
        sealed = app_crypto.cres_encrypt(cres, session_key=opener.session_key, acs_trans_id=acs_trans_id, enc=opener.enc)
        return HttpResponse(sealed, content_type=JOSE_CONTENT_TYPE)


def _cres(challenge: Challenge, step: flow.Step, notice: str, acs_counter: int) -> dict:
    """From the challenge as the step left it (read under its lock, written by the step): no
    re-read."""
    tx = challenge.transaction
    if challenge.is_final:
        return {**flow.final_cres(challenge), "acsCounterAtoS": f"{acs_counter:03d}"}
    texts = TEXTS.get(challenge.locale, TEXTS["en"])
    phone = challenge.phone.masked if challenge.phone else ""
    amount = ""
    if tx.purchase_amount is not None:
        amount = format_amount(tx.purchase_amount, tx.purchase_currency, tx.purchase_exponent or 0, challenge.locale)
    cres = {
        "messageType": "CRes",
        "messageVersion": tx.message_version,
        "threeDSServerTransID": str(tx.three_ds_server_trans_id),
        "acsTransID": str(tx.acs_trans_id),
        "sdkTransID": str(tx.sdk_trans_id),
        "acsCounterAtoS": f"{acs_counter:03d}",
        "challengeCompletionInd": "N",
        "challengeInfoHeader": texts["header"],
    }
    if challenge.method == Challenge.OOB:
        cres.update(acsUiType=ACS_UI_TYPE_OOB, challengeInfoText=texts["oob"], oobContinueLabel=texts["oob_continue"])
        return cres
    info = texts["info"].format(phone=phone, merchant=tx.merchant_name, amount=amount)
    if step.outcome == "wrong_code":
        info = texts["wrong"].format(left=step.attempts_left)
        cres["challengeInfoTextIndicator"] = "Y"
    elif step.outcome == "expired_code":
        info = texts["expired"]
        cres["challengeInfoTextIndicator"] = "Y"
    elif step.outcome == "resent":
        info = texts["resent"].format(phone=phone)
    elif notice:
        info = notice
    cres.update(
        acsUiType=ACS_UI_TYPE_TEXT,
        challengeInfoText=info,
        challengeInfoLabel=texts["label"],
        submitAuthenticationLabel=texts["submit"],
        resendInformationLabel=texts["resend"],
    )
    return cres
