"""Texts of the browser challenge page, per cardholder locale (SPEC §2: at least en, ja, fr).

A plain dict rather than gettext: the page has a few dozen strings, the locale comes from the
cardholder record (not from the browser), and nothing needs a compile step to ship.
"""

DEFAULT_LOCALE = "en"

TEXTS = {
    "en": {
        "title": "Verify your payment",
        "merchant": "Merchant",
        "amount": "Amount",
        "sent_to": "We sent a verification code by SMS to {phone}.",
        "code_label": "Verification code",
        "submit": "Submit",
        "resend": "Resend code",
        "cancel": "Cancel",
        "never_share": "Never share this code with anyone, including {issuer}.",
        "enter_code": "Enter the code from the SMS.",
        "wrong_code_one": "That code is not right. 1 attempt left.",
        "wrong_code_other": "That code is not right. {n} attempts left.",
        "expired_code": "This code has expired. Ask for a new code.",
        "resent": "A new code was sent to {phone}. The previous code no longer works.",
        "resend_cooldown": "Wait {seconds} s before asking for a new code.",
        "resend_limit": "No more codes can be sent for this payment.",
        "resend_refused": "A new code cannot be sent now.",
        "oob_title": "Confirm in your banking app",
        "oob_text": "Open the {issuer} app on your phone and confirm this payment. This page moves on by itself; if it does not, press Continue.",
        "oob_pending": "The payment is not confirmed yet.",
        "fell_back": "The payment could not be confirmed in the app. We sent a verification code by SMS to {phone}.",
        "continue": "Continue",
        "final_success": "Payment verified.",
        "final_failed": "The payment could not be verified.",
        "final_cancelled": "Verification cancelled.",
        "returning": "Returning you to {merchant}…",
        "error_title": "This verification cannot continue",
        "error_text": "Return to the merchant's page and try the payment again.",
        "refused": "This page has expired. Return to the merchant's page and try the payment again.",
        "decoupled_info": "Open your bank's app on your phone to confirm this payment.",
    },
    "ja": {
        "title": "お支払いの本人認証",
        "merchant": "加盟店",
        "amount": "金額",
        "sent_to": "{phone} にSMSで認証コードを送信しました。",
        "code_label": "認証コード",
        "submit": "送信",
        "resend": "コードを再送信",
        "cancel": "キャンセル",
        "never_share": "このコードは{issuer}を含め、誰にも教えないでください。",
        "enter_code": "SMSに記載されたコードを入力してください。",
        "wrong_code_one": "コードが正しくありません。残り1回です。",
        "wrong_code_other": "コードが正しくありません。残り{n}回です。",
        "expired_code": "このコードは有効期限が切れています。新しいコードを請求してください。",
        "resent": "{phone} に新しいコードを送信しました。以前のコードは使用できません。",
        "resend_cooldown": "新しいコードを請求するまで{seconds}秒お待ちください。",
        "resend_limit": "このお支払いについては、これ以上コードを送信できません。",
        "resend_refused": "現在、新しいコードを送信できません。",
        "oob_title": "銀行アプリで確認してください",
        "oob_text": "スマートフォンの{issuer}アプリでこのお支払いを確認してください。このページは自動的に進みます。進まない場合は「続行」を押してください。",
        "oob_pending": "お支払いはまだ確認されていません。",
        "fell_back": "アプリでお支払いを確認できなかったため、{phone} にSMSで認証コードを送信しました。",
        "continue": "続行",
        "final_success": "本人認証が完了しました。",
        "final_failed": "本人認証ができませんでした。",
        "final_cancelled": "本人認証はキャンセルされました。",
        "returning": "{merchant}のページに戻ります…",
        "error_title": "本人認証を続行できません",
        "error_text": "加盟店のページに戻り、もう一度お支払いをお試しください。",
        "refused": "このページは有効期限切れです。加盟店のページに戻り、もう一度お支払いをお試しください。",
        "decoupled_info": "スマートフォンでカード会社のアプリを開き、このお支払いを承認してください。",
    },
    "fr": {
        "title": "Vérifiez votre paiement",
        "merchant": "Commerçant",
        "amount": "Montant",
        "sent_to": "Nous avons envoyé un code de vérification par SMS au {phone}.",
        "code_label": "Code de vérification",
        "submit": "Valider",
        "resend": "Renvoyer le code",
        "cancel": "Annuler",
        "never_share": "Ne communiquez jamais ce code, pas même à {issuer}.",
        "enter_code": "Saisissez le code reçu par SMS.",
        "wrong_code_one": "Ce code est incorrect. Il reste 1 tentative.",
        "wrong_code_other": "Ce code est incorrect. Il reste {n} tentatives.",
        "expired_code": "Ce code a expiré. Demandez un nouveau code.",
        "resent": "Un nouveau code a été envoyé au {phone}. L'ancien code ne fonctionne plus.",
        "resend_cooldown": "Patientez {seconds} s avant de demander un nouveau code.",
        "resend_limit": "Aucun autre code ne peut être envoyé pour ce paiement.",
        "resend_refused": "Un nouveau code ne peut pas être envoyé pour le moment.",
        "oob_title": "Confirmez dans votre application bancaire",
        "oob_text": "Ouvrez l'application {issuer} sur votre téléphone et confirmez ce paiement. Cette page avance d'elle-même ; sinon, appuyez sur Continuer.",
        "oob_pending": "Le paiement n'est pas encore confirmé.",
        "fell_back": "Le paiement n'a pas pu être confirmé dans l'application. Nous avons envoyé un code de vérification par SMS au {phone}.",
        "continue": "Continuer",
        "final_success": "Paiement vérifié.",
        "final_failed": "Le paiement n'a pas pu être vérifié.",
        "final_cancelled": "Vérification annulée.",
        "returning": "Retour vers {merchant}…",
        "error_title": "Cette vérification ne peut pas continuer",
        "error_text": "Revenez sur la page du commerçant et recommencez le paiement.",
        "refused": "Cette page a expiré. Revenez sur la page du commerçant et recommencez le paiement.",
        "decoupled_info": "Ouvrez l'application de votre banque sur votre téléphone pour confirmer ce paiement.",
    },
}

# The OTP engine words its refusals in English (they also go to analysts); the page says them in
# the cardholder's language.
_RESEND_REFUSALS = {
    "No more codes can be sent for this payment.": "resend_limit",
    "Too many codes sent for this card in the last hour.": "resend_limit",
    "Too many codes sent for this card today.": "resend_limit",
    "Too many codes sent to this phone today.": "resend_limit",
}


def page_locale(locale: str | None) -> str:
    """"ja", "ja-JP", "JA_jp" → "ja"; anything unknown → "en"."""
    language = (locale or "").replace("_", "-").split("-")[0].lower()
    return language if language in TEXTS else DEFAULT_LOCALE


def texts_for(locale: str | None) -> dict:
    return TEXTS[page_locale(locale)]


def wrong_code_text(locale: str | None, attempts_left: int) -> str:
    texts = texts_for(locale)
    if attempts_left == 1:
        return texts["wrong_code_one"]
    return texts["wrong_code_other"].format(n=attempts_left)


def resend_refused_text(locale: str | None, *, message: str, retry_after: int | None) -> str:
    texts = texts_for(locale)
    if retry_after:
        return texts["resend_cooldown"].format(seconds=retry_after)
    return texts[_RESEND_REFUSALS.get(message, "resend_refused")]
