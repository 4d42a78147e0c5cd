"""The browser challenge page at acsURL (SPEC §3.2): `POST /3ds/v2/challenge`.

Two kinds of POST reach it:
- the merchant side's first post, `creq` (base64url JSON CReq) and optional `threeDSSessionData`;
- the page's own form: `acsTransID`, `pageToken` and `action` (submit / resend / cancel / continue).

The challenge rules live in apps.threeds.challenge; this module reads the form, calls one of its
functions and renders what the Step says. A finished challenge renders a page that posts the final
CRes to the AReq's notificationURL.

Security choices, per response:
- Framing: X-Frame-Options is dropped for this view only and CSP `frame-ancestors *`. The page
  must load inside whatever 3DS Requestor environment the cardholder is in, and frame-ancestors
  is checked against every ancestor: with a 3DS Server that nests its own iframe in the merchant's
  checkout (a PSP's hooks domain inside shop.example), the top origin is neither the
  notificationURL's origin nor reliably threeDSRequestorURL's. Limiting it would fail real
  challenges. What guards the page instead: it exists only for a POST carrying a live CReq, every
  action needs the page token (bound to this transaction, good for one post, renewed at each
  render), and nothing on it is worth anything without the code sent to the cardholder's phone.
- CSRF: exempt (the merchant's cross-site post cannot carry our token); the page token is the
  anti-forgery guard of the page's own posts.
- CSP: no inline script or style; the page's form may post only to us (`form-action 'self'`);
  the final page's form posts to the merchant side, which may redirect anywhere, and Chromium
  applies form-action to redirects too, so that page has `form-action *`.
- Cache-Control no-store; never the PAN or the OTP in a page. Referrer-Policy strict-origin, so the
  final post to notificationURL carries our origin, never a path.
"""

import logging
import unicodedata
import uuid

from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.cache import add_never_cache_headers
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from apps.core.exceptions import ApplicationError
from apps.core.middleware import content_security_policy as site_policy
from apps.core.money import format_amount
from apps.threeds import challenge as flow
from apps.threeds.locale import page_locale, resend_refused_text, texts_for, wrong_code_text
from apps.threeds.emv import BROWSER, CANCEL_BY_CARDHOLDER, CHALLENGE_WINDOW_SIZES, FULL_PAGE_WINDOW
from apps.threeds.messages import (
    MAX_SESSION_DATA_CHARS,
    MessageError,
    NotBase64urlJson,
    base64url_json_decode,
    base64url_json_encode,
    erro,
    uuid36,
    validate_browser_creq,
)
from apps.threeds.models import Challenge

logger = logging.getLogger(__name__)

MAX_CREQ_CHARS = 4096  # a browser CReq is five short elements
MAX_CODE_CHARS = 16

FORM_ACTION_SELF = "'self'"
FORM_ACTION_ANY = "*"
FORM_ACTION_NONE = "'none'"


@csrf_exempt
@xframe_options_exempt
def challenge(request):
    if request.method != "POST":
        response = _error_page(status=405)
        response["Allow"] = "POST"
        return response
    try:
        form = request.POST
    except Exception:  # oversized body, too many fields, broken multipart: bad input, not a 500
        return _error_page(status=400)
    if any("\x00" in value for values in form.lists() for value in values[1]):
        # No legitimate field carries NUL, and PostgreSQL text cannot store it.
        return _error_page(status=400)
    try:
        if "creq" in form:
            return _first_creq(form)
        return _page_action(form)
    except ApplicationError as exc:  # e.g. ChallengeClosed: a post the state no longer allows
        logger.info("challenge page refused: %s", exc.code)
        return _error_page(status=exc.status_code if 400 <= exc.status_code < 500 else 409)
    except Exception:
        logger.exception("challenge page failed")
        return _error_page(status=500)


@csrf_exempt
def challenge_status(request):
    """The OOB page asks, every few seconds, whether it should move on (the app confirmed, or the
    challenge fell back to SMS or ended). Needs the page's current token, does not spend it, and
    says nothing but that."""
    if request.method != "POST":
        return JsonResponse({"error": "method_not_allowed"}, status=405, headers={"Allow": "POST"})
    try:
        form = request.POST
    except Exception:
        return JsonResponse({"error": "bad_request"}, status=400)
    acs_trans_id = form.get("acsTransID", "")
    challenge = _challenge_for(acs_trans_id) if uuid36(acs_trans_id, None) else None
    if challenge is None or not flow.page_token_matches(challenge, form.get("pageToken", "")):
        return JsonResponse({"error": "refused"}, status=403)
    response = JsonResponse({"waiting": not challenge.is_final and _is_oob(challenge)})
    add_never_cache_headers(response)
    return response


# ---------------------------------------------------------------- the merchant's CReq


class _Unreadable(Exception):
    """A CReq that names no transaction we can answer to: a plain error page."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


def creq_decode(raw: str) -> dict:
    """The creq form field → JSON object, or _Unreadable."""
    try:
        return base64url_json_decode(raw, max_chars=MAX_CREQ_CHARS, standard_alphabet_too=True)
    except NotBase64urlJson as exc:
        raise _Unreadable(f"creq: {exc}") from None


def _first_creq(form):
    try:
        creq = creq_decode(form.get("creq", ""))
        challenge = _challenge_named_by(creq)
    except _Unreadable as exc:
        logger.info("CReq refused: %s", exc)
        return _error_page(status=exc.status)
    tx = challenge.transaction
    session_data = form.get("threeDSSessionData", "")
    try:
        validate_browser_creq(creq, transaction_version=tx.message_version, session_data=session_data)
    except MessageError as exc:
        # The transaction is known: EMV has the Erro go back to the 3DS Server through the
        # browser, posted to notificationURL like a CRes. The challenge itself is left to its
        # deadline (a stray bad post must not be able to end someone's transaction).
        code, detail = exc.code, exc.detail
        logger.info("CReq invalid for %s: %s %s", tx.acs_trans_id, code, detail)
        ids = {"messageVersion": tx.message_version, "threeDSServerTransID": str(tx.three_ds_server_trans_id), "dsTransID": str(tx.ds_trans_id)}
        message = erro(code=code, detail=detail, message=ids, message_type="CReq", acs_trans_id=tx.acs_trans_id)
        keep_session_data = session_data if len(session_data) <= MAX_SESSION_DATA_CHARS else ""
        window = creq.get("challengeWindowSize") if creq.get("challengeWindowSize") in CHALLENGE_WINDOW_SIZES else FULL_PAGE_WINDOW
        return _post_back_page(challenge, message=message, session_data=keep_session_data, window=window, result_key="final_failed")
    challenge, step = flow.challenge_begin(
        acs_trans_id=tx.acs_trans_id, challenge_window_size=creq["challengeWindowSize"], three_ds_session_data=session_data
    )
    return _respond(challenge, step)


def _challenge_named_by(creq: dict) -> Challenge:
    acs_trans_id, server_trans_id = creq.get("acsTransID"), creq.get("threeDSServerTransID")
    if not uuid36(acs_trans_id, None) or not uuid36(server_trans_id, None):
        raise _Unreadable("acsTransID or threeDSServerTransID missing or malformed")
    challenge = _challenge_for(acs_trans_id)
    if challenge is None:
        raise _Unreadable("no challenge for this acsTransID", status=404)
    tx = challenge.transaction
    # Both ids must name the transaction: acsTransID alone does not make a post ours to answer.
    if uuid.UUID(server_trans_id) != tx.three_ds_server_trans_id:
        raise _Unreadable("threeDSServerTransID does not match the transaction")
    if tx.device_channel != BROWSER or not tx.notification_url:
        raise _Unreadable("not a browser transaction")
    return challenge


def _challenge_for(acs_trans_id: str) -> Challenge | None:
    return (
        Challenge.objects.select_related("transaction", "transaction__issuer", "phone", "otp_session")
        # A decoupled authentication has no CReq nor page: answered as a transaction without one.
        .filter(transaction_id=acs_trans_id, decoupled=False)
        .first()
    )


# ---------------------------------------------------------------- the page's own posts


def _page_action(form):
    acs_trans_id = form.get("acsTransID", "")
    challenge = _challenge_for(acs_trans_id) if uuid36(acs_trans_id, None) else None
    # The token is the only thing that makes this post the page we rendered for this transaction.
    if challenge is None or not flow.page_token_matches(challenge, form.get("pageToken", "")):
        logger.info("challenge page post refused: unknown transaction or bad page token")
        return _error_page(status=403, locale=challenge.locale if challenge else None, text_key="refused")
    if challenge.transaction.device_channel != BROWSER or not flow.page_token_spend(challenge):
        return _error_page(status=403, locale=challenge.locale, text_key="refused")
    if challenge.is_final:  # ended meanwhile (a timeout, the app): hand the result back
        return _final_page(challenge)
    action = form.get("action", "")
    acs_trans_id = challenge.transaction_id
    if action == "submit":
        # NFKC: full-width digits typed with a Japanese input method are the same digits.
        code = "".join(unicodedata.normalize("NFKC", form.get("challengeDataEntry", "")).split())
        if not (code.isascii() and code.isdigit()) or len(code) > MAX_CODE_CHARS:
            # Not a guess at a code at all: say what to type, do not spend an attempt.
            return _render_challenge(challenge, message_key="enter_code", kind="error")
        challenge, step = flow.challenge_submit_code(acs_trans_id=acs_trans_id, code=code)
    elif action == "resend":
        challenge, step = flow.challenge_resend(acs_trans_id=acs_trans_id)
    elif action == "cancel":
        challenge, step = flow.challenge_cancel(acs_trans_id=acs_trans_id), flow.Step("finished")
    else:  # "continue" (the OOB page), or no action: show where things stand
        challenge = _challenge_for(acs_trans_id)
        if not challenge.is_final and _is_oob(challenge) and action == "continue":
            return _render_challenge(challenge, message_key="oob_pending", kind="info")
        if not challenge.is_final and challenge.fallback_reason and action == "continue":
            # The app could not confirm: the page turns into the SMS code page, and says why.
            return _render_challenge(challenge, message_key="fell_back", kind="info")
        step = flow.Step("finished" if challenge.is_final else "started")
    return _respond(challenge, step)


# ---------------------------------------------------------------- rendering


def _respond(challenge: Challenge, step: flow.Step) -> HttpResponse:
    if step.outcome == "finished" or challenge.is_final:
        return _final_page(challenge)
    locale = challenge.locale
    if step.outcome == "wrong_code":
        return _render_challenge(challenge, message=wrong_code_text(locale, step.attempts_left or 0), kind="error")
    if step.outcome == "expired_code":
        return _render_challenge(challenge, message_key="expired_code", kind="error")
    if step.outcome == "resent":
        return _render_challenge(challenge, message_key="resent", kind="info")
    if step.outcome == "resend_refused":
        text = resend_refused_text(locale, message=step.message, retry_after=step.retry_after)
        return _render_challenge(challenge, message=text, kind="error")
    return _render_challenge(challenge)


def _is_oob(challenge: Challenge) -> bool:
    return challenge.method == Challenge.OOB and challenge.otp_session_id is None


def _masked_phone(challenge: Challenge) -> str:
    # The number the code went to (the session keeps it), else the challenge's phone.
    if challenge.otp_session_id and challenge.otp_session.masked_phone:
        return challenge.otp_session.masked_phone
    return challenge.phone.masked if challenge.phone else ""


def _with_phone(text: str, phone: str) -> str:
    """The text with the masked number kept on one line (it has spaces in it); escaped."""
    before, found, after = text.partition("{phone}")
    return format_html('{}<span class="nowrap">{}</span>{}', before, phone, after) if found else text


def _window(challenge: Challenge) -> str:
    return challenge.challenge_window_size if challenge.challenge_window_size in CHALLENGE_WINDOW_SIZES else FULL_PAGE_WINDOW


def _render_challenge(challenge: Challenge, *, message: str = "", message_key: str = "", kind: str = "info") -> HttpResponse:
    tx = challenge.transaction
    locale = page_locale(challenge.locale)
    t = texts_for(locale)
    phone = _masked_phone(challenge)
    issuer_name = tx.issuer.name if tx.issuer else ""
    amount = ""
    if tx.purchase_amount is not None and tx.purchase_currency:
        amount = format_amount(tx.purchase_amount, tx.purchase_currency, tx.purchase_exponent or 0, locale)
    context = {
        "lang": locale,
        "t": t,
        "window": _window(challenge),
        "issuer_name": issuer_name,
        "merchant_name": tx.merchant_name,
        "amount": amount,
        "oob": _is_oob(challenge),
        "oob_text": t["oob_text"].format(issuer=issuer_name),
        "sent_to": _with_phone(t["sent_to"], phone),
        "never_share": t["never_share"].format(issuer=issuer_name),
        "message": message or (_with_phone(t[message_key], phone) if message_key else ""),
        "message_kind": kind,
        "action_url": reverse("threeds-challenge"),
        "status_url": reverse("threeds-challenge-status"),
        "acs_trans_id": str(tx.acs_trans_id),
        "page_token": flow.page_token_new(challenge),
    }
    return _html("threeds/challenge.html", context, form_action=FORM_ACTION_SELF)


def _final_page(challenge: Challenge) -> HttpResponse:
    tx = challenge.transaction
    if tx.trans_status in ("Y", "A"):
        result_key = "final_success"
    elif tx.challenge_cancel == CANCEL_BY_CARDHOLDER:
        result_key = "final_cancelled"
    else:
        result_key = "final_failed"
    return _post_back_page(
        challenge, message=flow.final_cres(challenge), session_data=challenge.three_ds_session_data,
        window=_window(challenge), result_key=result_key,
    )


def _post_back_page(challenge: Challenge, *, message: dict, session_data: str, window: str, result_key: str) -> HttpResponse:
    """The page that hands a final CRes (or an Erro) to the 3DS Server at notificationURL."""
    tx = challenge.transaction
    locale = page_locale(challenge.locale)
    t = texts_for(locale)
    context = {
        "lang": locale,
        "t": t,
        "window": window,
        "issuer_name": tx.issuer.name if tx.issuer else "",
        "result": t[result_key],
        "returning": t["returning"].format(merchant=tx.merchant_name),
        "notification_url": tx.notification_url,
        "cres": base64url_json_encode(message),
        "session_data": session_data,
    }
    return _html("threeds/final.html", context, form_action=FORM_ACTION_ANY)


def _error_page(*, status: int, locale: str | None = None, text_key: str = "error_text") -> HttpResponse:
    t = texts_for(locale)
    context = {"lang": page_locale(locale), "t": t, "window": FULL_PAGE_WINDOW, "text": t[text_key]}
    return _html("threeds/error.html", context, status=status, form_action=FORM_ACTION_NONE)


def content_security_policy(*, form_action: str) -> str:
    # The site's policy (apps.core.middleware), framable by any merchant, form-action per page.
    return site_policy(form_action=form_action, frame_ancestors="*")


def _html(template: str, context: dict, *, status: int = 200, form_action: str) -> HttpResponse:
    response = HttpResponse(render_to_string(template, context), status=status, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = content_security_policy(form_action=form_action)
    # The site default (same-origin) would make the cross-site post to notificationURL carry
    # `Origin: null`; the 3DS Server may look at where the CRes came from. Origin only, no path.
    response["Referrer-Policy"] = "strict-origin"
    add_never_cache_headers(response)  # Cache-Control: max-age=0, no-cache, no-store, must-revalidate, private
    return response
