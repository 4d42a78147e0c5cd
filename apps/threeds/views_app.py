"""App channel: `POST /3ds/v2/creq`, a JSON CReq from the 3DS SDK → CRes (SPEC §3.3).

Plain JSON for now (EMV wants JWE on this channel; that is a later step). The CReq is validated
in apps.threeds.messages; the SDK's sdkCounterStoA is claimed in apps.threeds.challenge (it must be
exactly the one expected; a replayed counter is Erro 302, a skipped one Erro 303, and neither
changes the challenge).
"""

import uuid

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.logging import sensitive
from apps.core.money import format_amount
from apps.threeds import challenge as flow
from apps.threeds.emv import (
    ACS_UI_TYPE_OOB,
    ACS_UI_TYPE_TEXT,
    ERROR_ACCESS_DENIED,
    ERROR_DECRYPTION_FAILURE,
    ERROR_TRANSACTION_ID_NOT_RECOGNISED,
)
from apps.threeds.messages import MessageError, erro, validate_app_creq
from apps.threeds.models import Challenge
from apps.threeds.views import erro_unless_post, read_json_message

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


def _erro(code: str, detail: str, message: dict, acs_trans_id=None) -> JsonResponse:
    return JsonResponse(erro(code=code, detail=detail, message=message, message_type="CReq", acs_trans_id=acs_trans_id))


# A refused sdkCounterStoA: a replayed counter is a CReq that cannot be authenticated (302); a
# skipped one is refused too (303) so that a lost CReq is never silently passed over.
_COUNTER_ERRO = {flow.COUNTER_REPLAYED: ERROR_DECRYPTION_FAILURE, flow.COUNTER_SKIPPED: ERROR_ACCESS_DENIED}


@csrf_exempt
@erro_unless_post(message_type="CReq")
def creq(request):
    message, error_response = read_json_message(request, message_type="CReq")
    if error_response is not None:
        return error_response
    try:
        validate_app_creq(message)
    except MessageError as exc:
        return _erro(exc.code, exc.detail, exc.message)

    with sensitive(message.get("challengeDataEntry")):
        answer = flow.challenge_app_creq(
            acs_trans_id=uuid.UUID(message["acsTransID"]),
            three_ds_server_trans_id=message["threeDSServerTransID"],
            sdk_trans_id=message["sdkTransID"],
            counter=int(message["sdkCounterStoA"]),
            three_ds_requestor_app_url=message.get("threeDSRequestorAppURL", ""),
            cancel=bool(message.get("challengeCancel")),
            resend=message.get("resendChallenge") == "Y",
            code=message.get("challengeDataEntry"),
        )
        if answer.refused == flow.NOT_RECOGNISED:
            return _erro(ERROR_TRANSACTION_ID_NOT_RECOGNISED, "acsTransID", message)
        if answer.refused:
            return _erro(_COUNTER_ERRO[answer.refused], "sdkCounterStoA", message, uuid.UUID(message["acsTransID"]))
        step = answer.step
        notice = step.message if step.outcome == "resend_refused" else ""
        return JsonResponse(_cres(answer.challenge, step, notice, answer.acs_counter))


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
