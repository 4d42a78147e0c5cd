"""The challenge, channel-independent: the browser page (views_browser) and the app CReq endpoint
(views_app) both drive it through these functions.

Every function takes the challenge row under a lock, so a double submit, a page posted twice or a
timeout racing the cardholder's last entry change the state once. A challenge ends exactly once, in
`challenge_finish`, which records the result and sends the RReq and the issuer notification.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.exceptions import ApplicationError
from apps.otp import services as otp
from apps.threeds.models import Challenge, Transaction
from apps.threeds.results import authentication_value, eci_for

# challengeCancel values (EMV 3DS)
CANCEL_BY_CARDHOLDER = "01"
CANCEL_TIMEOUT_OTHER = "04"  # whole challenge took too long
CANCEL_TIMEOUT_FIRST_CREQ = "05"  # no CReq reached the ACS in time

REASON_AUTH_FAILED = "01"
REASON_NO_METHOD = "13"
REASON_TIMEOUT = "14"
REASON_TOO_MANY_ATTEMPTS = "19"
REASON_TECHNICAL = "22"


class ChallengeClosed(ApplicationError):
    def __init__(self, message="This authentication is over."):
        super().__init__(message, code="challenge_closed", status_code=409)


@dataclass(frozen=True)
class Step:
    """What the cardholder's last action led to, for the page or the CRes to show."""

    outcome: str  # started | wrong_code | expired_code | resent | resend_refused | finished
    attempts_left: int | None = None
    message: str = ""
    retry_after: int | None = None


def _locked(acs_trans_id) -> Challenge:
    return (
        Challenge.objects.select_for_update(of=("self",))
        .select_related("transaction", "transaction__issuer", "transaction__card", "transaction__card__cardholder", "phone")
        .get(transaction_id=acs_trans_id)
    )


def page_token_new(challenge: Challenge) -> str:
    """A token the browser page posts back: binds the page to this transaction."""
    token = secrets.token_urlsafe(32)
    challenge.page_token_hash = hashlib.sha256(token.encode()).hexdigest()
    challenge.save(update_fields=["page_token_hash"])
    return token


def page_token_matches(challenge: Challenge, token: str) -> bool:
    if not challenge.page_token_hash or not isinstance(token, str):
        return False
    return hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), challenge.page_token_hash)


def page_token_spend(challenge: Challenge) -> bool:
    """One post per rendered page: the matching token is spent with a conditional UPDATE, so the
    same page posted twice (a replay, a double click) acts once even when both arrive together.
    The next render issues a new token."""
    return bool(
        Challenge.objects.filter(pk=challenge.pk, page_token_hash=challenge.page_token_hash)
        .exclude(page_token_hash="")
        .update(page_token_hash="")
    )


def transaction_details(tx: Transaction) -> dict:
    return {
        "merchantName": tx.merchant_name,
        "purchaseAmount": str(tx.purchase_amount) if tx.purchase_amount is not None else "",
        "purchaseCurrency": tx.purchase_currency,
        "purchaseExponent": str(tx.purchase_exponent) if tx.purchase_exponent is not None else "",
    }


def challenge_begin(*, acs_trans_id, challenge_window_size: str = "", three_ds_session_data: str = "") -> tuple[Challenge, Step]:
    """The first CReq: checks its deadline, then starts the method (sends the OTP). A repeated
    first CReq (page reload) does not send a second code."""
    with transaction.atomic():
        challenge = _locked(acs_trans_id)
        if challenge.is_final:
            return challenge, Step("finished")
        now = timezone.now()
        if challenge.state != Challenge.AWAITING_CREQ:
            return challenge, Step("started")
        if now > challenge.first_creq_deadline:
            _finish_locked(challenge, "N", REASON_TIMEOUT, cancel=CANCEL_TIMEOUT_FIRST_CREQ, actor="acs")
            return challenge, Step("finished")
        challenge.state = Challenge.IN_PROGRESS
        challenge.creq_received_at = now
        challenge.challenge_window_size = challenge_window_size or challenge.challenge_window_size
        challenge.three_ds_session_data = three_ds_session_data
        challenge.save(update_fields=["state", "creq_received_at", "challenge_window_size", "three_ds_session_data"])
        audit_record(issuer=challenge.transaction.issuer, kind="threeds.creq_received", actor="cardholder",
                     acs_trans_id=acs_trans_id, data={"method": challenge.method, "window": challenge.challenge_window_size})
        if challenge.method == Challenge.SMS_OTP:
            step = _start_otp(challenge)
            if step is not None:
                return challenge, step
    return challenge, Step("started")


def _start_otp(challenge: Challenge) -> Step | None:
    tx = challenge.transaction
    if challenge.phone is None or tx.card is None:
        _finish_locked(challenge, "N", REASON_NO_METHOD, actor="acs")
        return Step("finished")
    try:
        # The OTP session writes its own refusal record in a nested block before raising.
        session = otp.otp_session_start(
            card=tx.card, phone=challenge.phone, locale=challenge.locale, transaction_details=transaction_details(tx),
            acs_trans_id=tx.acs_trans_id, actor="acs",
        )
    except otp.OtpRefused as exc:
        challenge.fallback_reason = f"sms_{exc.code}"
        _finish_locked(challenge, "N", REASON_NO_METHOD, actor="acs")
        return Step("finished", message=exc.message)
    challenge.otp_session = session
    challenge.save(update_fields=["otp_session"])
    return None


def challenge_submit_code(*, acs_trans_id, code: str) -> tuple[Challenge, Step]:
    with transaction.atomic():
        challenge = _locked(acs_trans_id)
        if challenge.is_final:
            return challenge, Step("finished")
        if challenge.state != Challenge.IN_PROGRESS or challenge.otp_session_id is None:
            raise ChallengeClosed("No code is expected now.")
        if timezone.now() > challenge.deadline:
            _finish_locked(challenge, "N", REASON_TIMEOUT, cancel=CANCEL_TIMEOUT_OTHER, actor="acs")
            return challenge, Step("finished")
        tx = challenge.transaction
        tx.interaction_counter += 1
        tx.save(update_fields=["interaction_counter"])
        result = otp.otp_verify(session_id=challenge.otp_session_id, code=code, actor="cardholder")
        if result.outcome == "verified":
            _finish_locked(challenge, "Y", "", actor="cardholder")
            return challenge, Step("finished")
        if result.outcome in ("locked", "closed"):
            _finish_locked(challenge, "N", REASON_TOO_MANY_ATTEMPTS, actor="cardholder")
            return challenge, Step("finished")
        if result.outcome == "expired":
            return challenge, Step("expired_code", attempts_left=result.attempts_left)
        return challenge, Step("wrong_code", attempts_left=result.attempts_left)


def challenge_resend(*, acs_trans_id) -> tuple[Challenge, Step]:
    with transaction.atomic():
        challenge = _locked(acs_trans_id)
        if challenge.is_final:
            return challenge, Step("finished")
        if challenge.otp_session_id is None:
            raise ChallengeClosed("No code can be sent now.")
        try:
            otp.otp_resend(session_id=challenge.otp_session_id, actor="cardholder")
        except otp.OtpRefused as exc:
            return challenge, Step("resend_refused", message=exc.message, retry_after=exc.retry_after)
        return challenge, Step("resent")


def challenge_cancel(*, acs_trans_id) -> Challenge:
    with transaction.atomic():
        challenge = _locked(acs_trans_id)
        if not challenge.is_final:
            _finish_locked(challenge, "N", REASON_AUTH_FAILED, cancel=CANCEL_BY_CARDHOLDER, actor="cardholder")
        return challenge


def challenge_finish(*, acs_trans_id, trans_status: str, reason: str = "", cancel: str = "", actor: str) -> Challenge:
    """For other deciders (the OOB flow, timeouts). Does nothing on a challenge already over."""
    with transaction.atomic():
        challenge = _locked(acs_trans_id)
        if not challenge.is_final:
            _finish_locked(challenge, trans_status, reason, cancel=cancel, actor=actor)
        return challenge


def _finish_locked(challenge: Challenge, trans_status: str, reason: str, *, cancel: str = "", actor: str) -> None:
    tx = challenge.transaction
    now = timezone.now()
    if trans_status in ("Y", "A"):
        if tx.card is None:  # the card was removed mid-challenge: nothing to vouch for
            trans_status, reason = "U", REASON_TECHNICAL
        else:
            tx.authentication_value, tx.authentication_value_key_id = authentication_value(
                issuer_id=tx.issuer.issuer_id,
                pan=tx.card.decrypt_pan(),
                ds_trans_id=tx.ds_trans_id,
                acs_trans_id=tx.acs_trans_id,
                purchase_amount=tx.purchase_amount,
                purchase_currency=tx.purchase_currency,
                trans_status=trans_status,
            )
    tx.trans_status, tx.trans_status_reason, tx.challenge_cancel = trans_status, reason, cancel
    tx.eci = eci_for(network=tx.network, co_badge=tx.co_badge, trans_status=trans_status) if tx.network else ""
    tx.finished_at = now
    tx.save(update_fields=["trans_status", "trans_status_reason", "challenge_cancel", "eci", "authentication_value",
                           "authentication_value_key_id", "finished_at"])
    if cancel == CANCEL_BY_CARDHOLDER:
        challenge.state = Challenge.CANCELLED
    elif reason == REASON_TIMEOUT:
        challenge.state = Challenge.TIMED_OUT
    else:
        challenge.state = Challenge.SUCCEEDED if trans_status in ("Y", "A") else Challenge.FAILED
    challenge.finished_at = now
    challenge.save(update_fields=["state", "finished_at", "fallback_reason"])
    if challenge.otp_session_id and trans_status not in ("Y", "A"):
        otp.otp_cancel(session_id=challenge.otp_session_id, actor=actor)
    audit_record(
        issuer=tx.issuer, kind="threeds.challenge_finished", actor=actor, acs_trans_id=tx.acs_trans_id,
        data={"transStatus": trans_status, "transStatusReason": reason, "challengeCancel": cancel, "method": challenge.method,
              "fallbackReason": challenge.fallback_reason, "interactionCounter": tx.interaction_counter},
    )
    from apps.threeds.outbound import transaction_finished

    transaction_finished(tx)


def final_cres(challenge: Challenge) -> dict:
    tx = challenge.transaction
    cres = {
        "messageType": "CRes",
        "messageVersion": tx.message_version,
        "threeDSServerTransID": str(tx.three_ds_server_trans_id),
        "acsTransID": str(tx.acs_trans_id),
        "transStatus": tx.trans_status,
        "challengeCompletionInd": "Y",
    }
    if tx.sdk_trans_id:
        cres["sdkTransID"] = str(tx.sdk_trans_id)
    return cres


def challenges_time_out(*, now=None) -> int:
    """Scheduled: end challenges past their deadlines (SPEC §3.4): no first CReq in time →
    N/14 with challengeCancel 05; not finished in time → N/14 with challengeCancel 04."""
    now = now or timezone.now()
    ended = 0
    late_first = Challenge.objects.filter(state=Challenge.AWAITING_CREQ, first_creq_deadline__lt=now).values_list("transaction_id", flat=True)
    late_whole = Challenge.objects.filter(state=Challenge.IN_PROGRESS, deadline__lt=now).values_list("transaction_id", flat=True)
    for ids, cancel in ((list(late_first[:500]), CANCEL_TIMEOUT_FIRST_CREQ), (list(late_whole[:500]), CANCEL_TIMEOUT_OTHER)):
        for acs_trans_id in ids:
            with transaction.atomic():
                challenge = _locked(acs_trans_id)
                due = challenge.first_creq_deadline if challenge.state == Challenge.AWAITING_CREQ else challenge.deadline
                if challenge.is_final or due >= now:
                    continue  # the cardholder got there first
                _finish_locked(challenge, "N", REASON_TIMEOUT, cancel=cancel, actor="acs")
                ended += 1
    return ended
