"""The challenge, channel-independent: the browser page (views_browser) and the app CReq endpoint
(views_app) both drive it through these functions; the issuer app's OOB answers
(apps/threeds/oob_decisions.py) come in through `challenge_lock`, `challenge_approve_locked`,
`challenge_fall_back_locked` and `challenge_oob_time_out_locked`.

Every function takes the challenge row under a lock, so a double submit, a page posted twice or a
timeout racing the cardholder's last entry change the state once. A challenge ends exactly once, in
`_finish_locked`, which records the result and sends the RReq and the issuer notification.

Statements (tests/threeds/test_challenge_statements.py counts them): the lock reads the challenge
with everything a step needs (transaction, issuer, card, phone, OTP session and its policy
version) in one query; each step writes each row once (the challenge's fields in one UPDATE at
the end of a step); the audit events of a step, the OTP engine's included, are collected in a list
and written in one INSERT (`audit_record_many`) before the step's transaction commits.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.audit.services import audit_record, audit_record_many
from apps.core.exceptions import ApplicationError
from apps.oob.models import AuthnRequest
from apps.oob.services import oob_request_close, oob_request_start
from apps.otp import services as otp
from apps.threeds.models import Challenge, Transaction
from apps.threeds.emv import (
    APP,
    CANCEL_BY_CARDHOLDER,
    CANCEL_TIMEOUT_FIRST_CREQ,
    CANCEL_TIMEOUT_OTHER,
    REASON_ACS_TECHNICAL,
    REASON_AUTH_FAILED,
    REASON_NO_METHOD,
    REASON_TIMEOUT,
    REASON_TOO_MANY_ATTEMPTS,
)
from apps.threeds.results import authentication_value, eci_for


# Fallback reasons (Challenge.fallback_reason; shown to analysts and in the notification).
FALLBACK_CANCELLED = "cancelled_in_app"
FALLBACK_TIMEOUT = "oob_timeout"
FALLBACK_PUSH_FAILED = "push_failed"
FALLBACK_PUSH_RATE_LIMITED = "push_rate_limited"
FALLBACK_ASSERTION_FAILED = "assertion_failed"
FALLBACK_DEVICE_BLOCKED = "device_blocked"
FALLBACK_NO_DEVICE = "no_active_device"


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
    """The challenge row, locked, with everything a step reads, in one query (the OTP session's
    active code too: `challenge.active_code`, and the issuer's risk policy for OOB). Only the
    challenge row is locked and, after a wait for the lock, re-read; the joined rows are as the
    statement first saw them. The OTP session and code are re-checked by otp_verify's conditional
    UPDATE. The transaction's interaction counter is written from this read when a code ends the
    challenge (else incremented with F()); it could only under-count a CReq that raced another
    CReq of the same challenge past the page token or sdkCounterStoA claim, which each let one
    through."""
    return (
        Challenge.objects.select_for_update(of=("self",))
        .annotate(active_code=otp.active_code_relation("otp_session"))
        .select_related(
            "active_code", "transaction", "transaction__issuer", "transaction__issuer__risk_policy", "transaction__card",
            "transaction__card__cardholder",
            "transaction__card__issuer", "phone", "otp_session", "otp_session__issuer", "otp_session__policy_version",
        )
        .get(transaction_id=acs_trans_id)
    )


def challenge_lock(acs_trans_id) -> Challenge | None:
    """For the decisions made outside the page and the CReq (oob_decisions: the app's answers, a
    push that failed): the challenge row locked first, always."""
    try:
        return _locked(acs_trans_id)
    except Challenge.DoesNotExist:
        return None


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
        audit: list = []
        step = _begin_locked(challenge, challenge_window_size=challenge_window_size,
                             three_ds_session_data=three_ds_session_data, audit=audit)
        audit_record_many(audit)
    return challenge, step


def _begin_locked(challenge: Challenge, *, challenge_window_size: str, three_ds_session_data: str, audit: list,
                  unsaved: set | None = None) -> Step:
    if challenge.is_final:
        return Step("finished")
    now = timezone.now()
    if challenge.state != Challenge.AWAITING_CREQ:
        return Step("started")
    if now > challenge.first_creq_deadline:
        _finish_locked(challenge, "N", REASON_TIMEOUT, cancel=CANCEL_TIMEOUT_FIRST_CREQ, actor="acs", audit=audit, unsaved=unsaved)
        return Step("finished")
    challenge.state = Challenge.IN_PROGRESS
    challenge.creq_received_at = now
    challenge.challenge_window_size = challenge_window_size or challenge.challenge_window_size
    challenge.three_ds_session_data = three_ds_session_data
    audit_record(issuer=challenge.transaction.issuer, kind="threeds.creq_received", actor="cardholder",
                 acs_trans_id=challenge.transaction_id, data={"method": challenge.method, "window": challenge.challenge_window_size},
                 batch=audit)
    step = None
    if challenge.method == Challenge.SMS_OTP:
        step = _start_otp(challenge, audit=audit)
    else:
        _start_oob(challenge, audit=audit)
        if challenge.is_final:
            step = Step("finished")
    # One UPDATE for what the first CReq changed (a method that ended the challenge has written
    # its end already; this adds the CReq's own fields).
    _save(challenge, ["state", "creq_received_at", "challenge_window_size", "three_ds_session_data",
                      "otp_session", "oob_deadline", "method", "fallback_reason"], unsaved)
    return step or Step("started")


def _save(challenge: Challenge, fields: list, unsaved: set | None) -> None:
    """One UPDATE of the challenge's `fields`, and of the fields a caller changed in memory and
    listed in `unsaved` (the app channel's counters), which are then saved."""
    if unsaved:
        fields = [*fields, *sorted(unsaved)]
        unsaved.clear()
    challenge.save(update_fields=fields)


def _start_oob(challenge: Challenge, *, audit: list) -> None:
    from apps.threeds.risk import risk_policy_for

    policy = risk_policy_for(challenge.transaction.issuer)
    request = oob_request_start(challenge=challenge, oob_timeout_seconds=policy.oob_timeout_seconds, audit=audit)
    if request is None:  # the device was revoked since the ARes
        challenge_fall_back_locked(challenge, reason=FALLBACK_NO_DEVICE, actor="acs", audit=audit)
        return
    challenge.oob_deadline = request.expires_at


def challenge_decoupled_start(challenge: Challenge) -> None:
    """Decoupled authentication (SPEC §3.9), inside the AReq's database transaction just after
    its challenge row is written: the OOB request and a push per active device, as an OOB
    challenge's first CReq would, open until threeDSRequestorDecMaxTime (the challenge's
    deadline). Raises when no device is active any more (revoked since the AReq's read): the AReq
    rolls back and is answered U / 22."""
    seconds = max(1, int((challenge.deadline - timezone.now()).total_seconds()))
    if oob_request_start(challenge=challenge, oob_timeout_seconds=seconds) is None:
        raise RuntimeError("decoupled authentication: no active device left")


# What ends an OOB challenge that cannot fall back to SMS: (transStatusReason, challengeCancel).
_NO_FALLBACK_OUTCOME = {
    FALLBACK_CANCELLED: (REASON_AUTH_FAILED, CANCEL_BY_CARDHOLDER),
    FALLBACK_TIMEOUT: (REASON_TIMEOUT, CANCEL_TIMEOUT_OTHER),
    FALLBACK_ASSERTION_FAILED: (REASON_AUTH_FAILED, ""),
    FALLBACK_DEVICE_BLOCKED: (REASON_AUTH_FAILED, ""),
}


def challenge_fall_back_locked(challenge: Challenge, *, reason: str, actor: str, audit: list | None = None) -> None:
    """OOB did not work out (SPEC §3.4): continue with an SMS OTP in the same transaction when the
    policy allows it and a verified phone exists, else end the challenge with N. The reason stays
    on the challenge either way. `audit`: the caller's list of events to write (else written here)."""
    if audit is None:
        events: list = []
        challenge_fall_back_locked(challenge, reason=reason, actor=actor, audit=events)
        audit_record_many(events)
        return
    from apps.threeds.risk import risk_policy_for

    if challenge.is_final or challenge.method != Challenge.OOB:
        return
    tx = challenge.transaction
    oob_request_close(challenge=challenge, state=AuthnRequest.WITHDRAWN)
    challenge.fallback_reason = reason[:32]
    phone = challenge.phone
    can_fall_back = (
        not challenge.decoupled  # no CReq, no page: nowhere to enter a code (SPEC §3.9)
        and risk_policy_for(tx.issuer).allow_fallback_to_sms
        and phone is not None and phone.verified and tx.card is not None
    )
    audit_record(issuer=tx.issuer, kind="threeds.oob_fallback", actor=actor, acs_trans_id=tx.acs_trans_id,
                 data={"reason": reason, "to": Challenge.SMS_OTP if can_fall_back else None}, batch=audit)
    if not can_fall_back:
        trans_status_reason, cancel = _NO_FALLBACK_OUTCOME.get(reason, (REASON_NO_METHOD, ""))
        _finish_locked(challenge, "N", trans_status_reason, cancel=cancel, actor=actor, audit=audit)
        return
    challenge.method, challenge.oob_deadline = Challenge.SMS_OTP, None
    _start_otp(challenge, audit=audit)
    challenge.save(update_fields=["method", "fallback_reason", "oob_deadline", "otp_session"])


def challenge_approve_locked(challenge: Challenge, *, actor: str) -> None:
    """The app's verified assertion decided the OOB challenge."""
    if not challenge.is_final:
        audit: list = []
        _finish_locked(challenge, "Y", "", actor=actor, audit=audit)
        audit_record_many(audit)


def challenge_oob_time_out_locked(challenge: Challenge, *, request: AuthnRequest | None = None) -> None:
    """The OOB wait is over: the request, if still open, expires and the challenge falls back.
    From the timeout sweep (the request is locked here, after the challenge) or from the app's
    late proceed or assertion (oob_decisions, with the request it locked)."""
    if request is None:
        request = AuthnRequest.objects.select_for_update().filter(challenge=challenge).first()
    if request is not None and request.is_open:
        request.state, request.decided_at = AuthnRequest.EXPIRED, timezone.now()
        request.save(update_fields=["state", "decided_at"])
    challenge_fall_back_locked(challenge, reason=FALLBACK_TIMEOUT, actor="acs")


def _start_otp(challenge: Challenge, *, audit: list) -> Step | None:
    """Open the OTP session and send the code; the caller saves `otp_session` with its other
    fields. A Step when the challenge ended instead (no phone, or the send limits said no)."""
    tx = challenge.transaction
    if challenge.phone is None or tx.card is None:
        _finish_locked(challenge, "N", REASON_NO_METHOD, actor="acs", audit=audit)
        return Step("finished")
    try:
        # A refusal is recorded (OtpRefusal, audit event) before it is raised.
        session = otp.otp_session_start(
            card=tx.card, phone=challenge.phone, locale=challenge.locale, transaction_details=transaction_details(tx),
            acs_trans_id=tx.acs_trans_id, actor="acs", audit=audit,
        )
    except otp.OtpRefused as exc:
        challenge.fallback_reason = f"sms_{exc.code}"
        _finish_locked(challenge, "N", REASON_NO_METHOD, actor="acs", audit=audit)
        return Step("finished", message=exc.message)
    challenge.otp_session = session
    return None


def challenge_submit_code(*, acs_trans_id, code: str) -> tuple[Challenge, Step]:
    with transaction.atomic():
        challenge = _locked(acs_trans_id)
        audit: list = []
        step = _submit_code_locked(challenge, code, audit=audit)
        audit_record_many(audit)
    return challenge, step


def _submit_code_locked(challenge: Challenge, code: str, *, audit: list, unsaved: set | None = None) -> Step:
    if challenge.is_final:
        return Step("finished")
    if challenge.state != Challenge.IN_PROGRESS or challenge.otp_session_id is None:
        raise ChallengeClosed("No code is expected now.")
    if timezone.now() > challenge.deadline:
        _finish_locked(challenge, "N", REASON_TIMEOUT, cancel=CANCEL_TIMEOUT_OTHER, actor="acs", audit=audit, unsaved=unsaved)
        return Step("finished")
    tx = challenge.transaction
    # Counted under the challenge's lock; written with the result when this entry ends the
    # challenge, else on its own.
    tx.interaction_counter += 1
    # The session and its active code were read with the challenge; otp_verify's conditional
    # UPDATE re-checks that the session is still as read.
    result = otp.otp_verify(session=challenge.otp_session, active_code=challenge.active_code, code=code, actor="cardholder", audit=audit)
    if result.outcome == "verified":
        _finish_locked(challenge, "Y", "", actor="cardholder", audit=audit, unsaved=unsaved)
        return Step("finished")
    if result.outcome in ("locked", "closed"):
        _finish_locked(challenge, "N", REASON_TOO_MANY_ATTEMPTS, actor="cardholder", audit=audit, unsaved=unsaved)
        return Step("finished")
    Transaction.objects.filter(pk=tx.pk).update(interaction_counter=F("interaction_counter") + 1)
    if result.outcome == "expired":
        return Step("expired_code", attempts_left=result.attempts_left)
    return Step("wrong_code", attempts_left=result.attempts_left)


def challenge_resend(*, acs_trans_id) -> tuple[Challenge, Step]:
    with transaction.atomic():
        challenge = _locked(acs_trans_id)
        if challenge.is_final:
            return challenge, Step("finished")
        if challenge.otp_session_id is None:
            raise ChallengeClosed("No code can be sent now.")
        audit: list = []
        try:
            otp.otp_resend(session_id=challenge.otp_session_id, actor="cardholder", audit=audit)
            step = Step("resent")
        except otp.OtpRefused as exc:
            step = Step("resend_refused", message=exc.message, retry_after=exc.retry_after)
        audit_record_many(audit)
        return challenge, step


def challenge_cancel(*, acs_trans_id) -> Challenge:
    with transaction.atomic():
        challenge = _locked(acs_trans_id)
        if not challenge.is_final:
            audit: list = []
            _finish_locked(challenge, "N", REASON_AUTH_FAILED, cancel=CANCEL_BY_CARDHOLDER, actor="cardholder", audit=audit)
            audit_record_many(audit)
        return challenge


def _finish_locked(challenge: Challenge, trans_status: str, reason: str, *, cancel: str = "", actor: str, audit: list,
                   unsaved: set | None = None) -> None:
    """Record the result on the transaction and the challenge (one UPDATE each, with the fields
    listed in `unsaved`) and hand the RReq and the notification to their deliveries. Its audit
    event goes to the caller's `audit` list."""
    tx = challenge.transaction
    now = timezone.now()
    if trans_status in ("Y", "A"):
        if tx.card is None:  # the card was removed mid-challenge: nothing to vouch for
            trans_status, reason = "U", REASON_ACS_TECHNICAL
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
                           "authentication_value_key_id", "finished_at", "interaction_counter"])
    if cancel == CANCEL_BY_CARDHOLDER:
        challenge.state = Challenge.CANCELLED
    elif reason == REASON_TIMEOUT:
        challenge.state = Challenge.TIMED_OUT
    else:
        challenge.state = Challenge.SUCCEEDED if trans_status in ("Y", "A") else Challenge.FAILED
    challenge.finished_at = now
    if unsaved is not None and challenge.app_session_key_blob is not None:
        # An app CReq's step: its CRes (sealed with the key already in hand) tells the SDK the
        # result, so the sealed session key goes in the UPDATE that ends the challenge.
        challenge.app_session_key_id, challenge.app_session_key_blob = "", None
        unsaved.update(_SESSION_KEY_FIELDS)
    _save(challenge, ["state", "finished_at", "fallback_reason"], unsaved)
    if challenge.method == Challenge.OOB or challenge.fallback_reason:
        oob_request_close(challenge=challenge, state=AuthnRequest.WITHDRAWN)
    if challenge.otp_session_id and trans_status not in ("Y", "A"):
        otp.otp_cancel(session_id=challenge.otp_session_id, actor=actor, audit=audit)
    audit_record(
        issuer=tx.issuer, kind="threeds.challenge_finished", actor=actor, acs_trans_id=tx.acs_trans_id,
        data={"transStatus": trans_status, "transStatusReason": reason, "challengeCancel": cancel, "method": challenge.method,
              "fallbackReason": challenge.fallback_reason, "interactionCounter": tx.interaction_counter},
        batch=audit,
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
    N/14 with challengeCancel 05; not finished in time → N/14 with challengeCancel 04; the OOB
    wait over → fallback to SMS (or N)."""
    now = now or timezone.now()
    ended = 0
    late_first = Challenge.objects.filter(state=Challenge.AWAITING_CREQ, first_creq_deadline__lt=now).values_list("transaction_id", flat=True)
    late_whole = Challenge.objects.filter(state=Challenge.IN_PROGRESS, deadline__lt=now).values_list("transaction_id", flat=True)
    late_oob = Challenge.objects.filter(state=Challenge.IN_PROGRESS, method=Challenge.OOB, oob_deadline__lt=now).values_list("transaction_id", flat=True)
    for acs_trans_id in list(late_oob[:500]):
        with transaction.atomic():
            challenge = _locked(acs_trans_id)
            if challenge.is_final or challenge.method != Challenge.OOB or not challenge.oob_deadline or challenge.oob_deadline >= now:
                continue  # decided or fallen back meanwhile
            challenge_oob_time_out_locked(challenge)
            ended += 1
    for ids, cancel in ((list(late_first[:500]), CANCEL_TIMEOUT_FIRST_CREQ), (list(late_whole[:500]), CANCEL_TIMEOUT_OTHER)):
        for acs_trans_id in ids:
            with transaction.atomic():
                challenge = _locked(acs_trans_id)
                due = challenge.first_creq_deadline if challenge.state == Challenge.AWAITING_CREQ else challenge.deadline
                if challenge.is_final or due >= now:
                    continue  # the cardholder got there first
                audit: list = []
                _finish_locked(challenge, "N", REASON_TIMEOUT, cancel=cancel, actor="acs", audit=audit)
                audit_record_many(audit)
                ended += 1
    _session_keys_wipe(now)
    return ended


# An app challenge that ended outside the SDK (OOB approved in the issuer's app, a fallback, a
# timeout) keeps its session key for the SDK's next CReq, whose final CRes is encrypted with it.
# Past this, no SDK is still waiting (its own challenge timeout is shorter): wiped (SPEC §3.3.6).
APP_SESSION_KEY_GRACE = timedelta(minutes=10)


def _session_keys_wipe(now) -> int:
    return Challenge.objects.filter(
        app_session_key_blob__isnull=False, finished_at__lt=now - APP_SESSION_KEY_GRACE
    ).update(app_session_key_id="", app_session_key_blob=None)


# ---------------------------------------------------------------- the app channel's CReq (SPEC §3.3)

COUNTER_CLAIMED, COUNTER_REPLAYED, COUNTER_SKIPPED = "claimed", "replayed", "skipped"
NOT_RECOGNISED = "not_recognised"
NOT_DECRYPTED = "not_decrypted"  # no app challenge for the kid, or the CReq does not open under its key
INVALID = "invalid"  # opened, but not a valid CReq: AppCReqRefused.error says which Erro
_SESSION_KEY_FIELDS = ("app_session_key_id", "app_session_key_blob")


@dataclass(frozen=True)
class AppCReq:
    """The CReq's elements a step uses, once the channel has opened and validated it."""

    three_ds_server_trans_id: str
    sdk_trans_id: str
    counter: int
    three_ds_requestor_app_url: str = ""
    cancel: bool = False
    resend: bool = False
    code: str | None = None


class AppCReqRefused(Exception):
    def __init__(self, refused: str, error=None):
        super().__init__(refused)
        self.refused, self.error = refused, error


@dataclass(frozen=True)
class AppStep:
    """What an app CReq led to: refused (NOT_DECRYPTED, INVALID with `error`, NOT_RECOGNISED,
    COUNTER_REPLAYED, COUNTER_SKIPPED; nothing changed), or the challenge after the step, the
    Step and the CRes's acsCounterAtoS."""

    refused: str = ""
    challenge: Challenge | None = None
    step: Step | None = None
    acs_counter: int | None = None
    error: object = None


def challenge_app_creq(*, acs_trans_id, open_creq) -> AppStep:
    """The 3DS SDK's CReq, in one transaction under the challenge's row lock (the same `_locked`
    read as the browser's steps). `open_creq(challenge)` is the channel's part (views_app: unseal
    the session key, decrypt, validate) run under the lock on the row just read, so a CReq is
    opened with no statement of its own; it returns an AppCReq or raises AppCReqRefused, and a
    refusal changes nothing.

    sdkCounterStoA must be exactly the one expected next: checked under the lock, so two CReqs
    carrying one counter cannot both pass; a replayed counter (below the expected one) or a skipped
    one (above it) changes nothing. A claimed one also keeps the threeDSRequestorAppURL the CReq
    carries (2.2.0: where the issuer app sends the cardholder back after OOB), and takes the CRes's
    acsCounterAtoS (000 first, one per CRes). Both counters are written in the step's transaction,
    with the step's UPDATE of the challenge when it has one (`unsaved`), else by one UPDATE of
    their own, so two CRes never carry the same counter. The step's audit events are written in one
    INSERT.

    The sealed session key is wiped when this CReq's CRes tells the SDK the result (SPEC §3.3.6),
    in the UPDATE that ends the challenge (`_finish_locked`) or that claims the counters. A
    challenge ended out of band (the issuer app's answer, a timeout) keeps it until the SDK's next
    CReq, whose final CRes needs it."""
    with transaction.atomic():
        try:
            challenge = _locked(acs_trans_id)
        except Challenge.DoesNotExist:
            return AppStep(refused=NOT_DECRYPTED)
        tx = challenge.transaction
        try:
            creq = open_creq(challenge)
        except AppCReqRefused as exc:
            return AppStep(refused=exc.refused, error=exc.error)
        if (
            tx.device_channel != APP
            or str(tx.three_ds_server_trans_id) != creq.three_ds_server_trans_id.lower()
            or str(tx.sdk_trans_id) != creq.sdk_trans_id.lower()
        ):
            return AppStep(refused=NOT_RECOGNISED)
        expected = challenge.sdk_counter_expected
        if creq.counter != expected:
            return AppStep(refused=COUNTER_REPLAYED if creq.counter < expected else COUNTER_SKIPPED)
        if creq.three_ds_requestor_app_url and creq.three_ds_requestor_app_url != tx.three_ds_requestor_app_url:
            # Before the step: a push the step sends names it.
            Transaction.objects.filter(pk=tx.pk).update(three_ds_requestor_app_url=creq.three_ds_requestor_app_url)
            tx.three_ds_requestor_app_url = creq.three_ds_requestor_app_url
        was_final = challenge.is_final
        acs_counter = challenge.acs_counter
        # Claimed under the lock; written with the step's UPDATE of the challenge, or on their own.
        challenge.sdk_counter_expected, challenge.acs_counter = expected + 1, acs_counter + 1
        unsaved = {"sdk_counter_expected", "acs_counter"}
        audit: list = []
        step = _app_step_locked(challenge, cancel=creq.cancel, resend=creq.resend, code=creq.code, audit=audit, unsaved=unsaved)
        wipe = {}
        if challenge.is_final and challenge.app_session_key_blob is not None:
            # Ended without `_finish_locked` seeing this step (before it, or by a fallback that ended it).
            challenge.app_session_key_id, challenge.app_session_key_blob = "", None
            wipe = {"app_session_key_id": "", "app_session_key_blob": None}
        if unsaved:
            Challenge.objects.filter(pk=challenge.pk, sdk_counter_expected=expected).update(
                sdk_counter_expected=expected + 1, acs_counter=acs_counter + 1, **wipe,
            )
        elif wipe:
            Challenge.objects.filter(pk=challenge.pk).update(**wipe)
        audit_record_many(audit)
        if was_final:
            # Ended by someone else (the app's answer, a timeout) while this CReq may have waited
            # for the lock: the result is read again rather than taken from the join.
            tx.refresh_from_db()
    return AppStep(challenge=challenge, step=step, acs_counter=acs_counter)


def _app_step_locked(challenge: Challenge, *, cancel: bool, resend: bool, code: str | None, audit: list, unsaved: set) -> Step:
    if cancel:  # also on the first CReq: the cardholder left before any code was sent
        if not challenge.is_final:
            _finish_locked(challenge, "N", REASON_AUTH_FAILED, cancel=CANCEL_BY_CARDHOLDER, actor="cardholder", audit=audit,
                           unsaved=unsaved)
        return Step("finished")
    if challenge.state == Challenge.AWAITING_CREQ:
        return _begin_locked(challenge, challenge_window_size="", three_ds_session_data="", audit=audit, unsaved=unsaved)
    if resend:
        if challenge.is_final:
            return Step("finished")
        if challenge.otp_session_id is None:
            raise ChallengeClosed("No code can be sent now.")
        try:
            otp.otp_resend(session_id=challenge.otp_session_id, actor="cardholder", audit=audit)
            return Step("resent")
        except otp.OtpRefused as exc:
            return Step("resend_refused", message=exc.message, retry_after=exc.retry_after)
    if code is not None:
        try:
            return _submit_code_locked(challenge, code, audit=audit, unsaved=unsaved)
        except ChallengeClosed:  # raised before anything is written
            return Step("started")
    return Step("started")
