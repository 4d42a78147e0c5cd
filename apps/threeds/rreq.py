"""RReq to the DS after every challenge (SPEC §3.6, §5.2): built once when the result is recorded,
POSTed to the AReq's dsURL, and retried until an RRes with resultsStatus "01" acknowledges it.

A delivery row is written in the caller's transaction; a task carrying only its id is enqueued
after commit. Each try is claimed with a conditional UPDATE, so a redelivered or duplicated task
never sends again after success and two workers never send the same RReq at once. Every try is
an RReqAttempt row; the end (RRes received, or given up) is an audit event on the transaction.
"""

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.exceptions import Conflict
from apps.core.logging import scrub
from apps.core.outbound_guard import DestinationNotAllowed, ds_url_allowed, guarded_session
from apps.threeds.messages import APP
from apps.threeds.models import Challenge, RReqAttempt, RReqDelivery, Transaction
from apps.threeds.results import eci_for
from apps.threeds.services import cb_message_extensions
from apps.webhooks.services import retry_delay

logger = logging.getLogger(__name__)

RESULTS_STATUS_RECEIVED = "01"
EXCERPT_CHARS = 500
# A pending RReq this late was lost (broker restart, worker killed): it is enqueued again.
OVERDUE_SECONDS = 120
# Cartes Bancaires elements that the RReq carries (CB-EXEMPTION is an ARes element only).
RREQ_CB_EXTENSIONS = ("CB-AVALGO", "CB-SCORE")
# EMV authenticationMethod (2.2.0): how the cardholder was authenticated.
AUTHENTICATION_METHOD = {Challenge.SMS_OTP: "02", Challenge.OOB: "07"}
# EMV authenticationType: 02 dynamic (OTP), 03 out of band.
AUTHENTICATION_TYPE = {Challenge.SMS_OTP: "02", Challenge.OOB: "03"}
# acsRenderingType.acsUiTemplate of the app channel: 01 text (OTP), 04 OOB.
ACS_UI_TEMPLATE = {Challenge.SMS_OTP: "01", Challenge.OOB: "04"}


# ---------------------------------------------------------------- the message


def rreq_message(tx: Transaction, challenge: Challenge | None = None) -> dict:
    """The RReq of a challenged transaction's final result. No PAN: only ids and the result."""
    if challenge is None:
        challenge = Challenge.objects.filter(transaction_id=tx.acs_trans_id).first()
    method = challenge.method if challenge is not None else ""
    message = {
        "messageType": "RReq",
        "messageVersion": tx.message_version,
        "threeDSServerTransID": str(tx.three_ds_server_trans_id),
        "dsTransID": str(tx.ds_trans_id),
        "acsTransID": str(tx.acs_trans_id),
        "messageCategory": tx.message_category,
        "transStatus": tx.trans_status,
        "interactionCounter": f"{min(tx.interaction_counter, 99):02d}",
    }
    if tx.device_channel == APP and tx.sdk_trans_id:
        message["sdkTransID"] = str(tx.sdk_trans_id)
    if tx.trans_status in ("N", "U", "R") and tx.trans_status_reason:
        message["transStatusReason"] = tx.trans_status_reason
    eci = tx.eci or (eci_for(network=tx.network, co_badge=tx.co_badge, trans_status=tx.trans_status) if tx.network else "")
    if eci:
        message["eci"] = eci
    if tx.trans_status in ("Y", "A") and tx.authentication_value:
        message["authenticationValue"] = tx.authentication_value
    authentication_type = AUTHENTICATION_TYPE.get(method) or tx.authentication_type
    if authentication_type:
        message["authenticationType"] = authentication_type
    if tx.message_version == "2.2.0" and method in AUTHENTICATION_METHOD:
        message["authenticationMethod"] = AUTHENTICATION_METHOD[method]
    if tx.challenge_cancel:
        message["challengeCancel"] = tx.challenge_cancel
    if tx.device_channel == APP and tx.message_version == "2.2.0" and method in ACS_UI_TEMPLATE:
        message["acsRenderingType"] = {"acsInterface": "01", "acsUiTemplate": ACS_UI_TEMPLATE[method]}
    extensions = [e for e in cb_message_extensions(tx) if e["name"] in RREQ_CB_EXTENSIONS]
    if extensions:
        message["messageExtension"] = extensions
    return message


def _enqueue(delivery_id: int) -> None:
    from apps.threeds.tasks import rreq_send  # tasks imports this module

    transaction.on_commit(lambda: rreq_send.delay(delivery_id))


@transaction.atomic(savepoint=False)  # inside the caller's transaction: nothing to undo alone
def rreq_enqueue(tx: Transaction) -> RReqDelivery | None:
    """Inside the transaction that recorded a challenged transaction's final result: record the
    RReq and send it after commit. A second call for the same transaction changes nothing."""
    if tx.issuer_id is None or not tx.trans_status:
        logger.warning("RReq of %s not sent: no issuer or no final result", tx.acs_trans_id)
        return None
    now = timezone.now()
    # The challenge's lock read the transaction with its challenge: no second read for it.
    challenge = getattr(tx, "challenge", None)
    delivery, created = RReqDelivery.objects.get_or_create(
        transaction=tx,
        defaults={
            "issuer_id": tx.issuer_id,
            "url": tx.ds_url,
            "message": rreq_message(tx, challenge),
            "max_tries": settings.OUTBOUND_MAX_TRIES,
            "next_attempt_at": now,
        },
    )
    if not created:
        return delivery
    if not tx.ds_url:
        error = "The AReq named no dsURL."
        RReqDelivery.objects.filter(pk=delivery.pk).update(
            status=RReqDelivery.FAILED, finished_at=now, next_attempt_at=None, last_error=error
        )
        audit_record(
            issuer=tx.issuer, kind="threeds.rreq_failed", actor="acs", acs_trans_id=tx.acs_trans_id, obj=delivery,
            data={"tries": 0, "error": error},
        )
        return delivery
    _enqueue(delivery.pk)
    return delivery


# ---------------------------------------------------------------- one try


@dataclass
class _Try:
    ok: bool
    error: str = ""
    status_code: int | None = None
    results_status: str = ""
    excerpt: str = ""
    error_class: str = ""
    permanent: bool = False  # another try cannot succeed (a refused destination)


def _lease_seconds() -> float:
    # Outlasts a try's connect and read timeouts; after it, a try whose worker died is taken over.
    return 2 * settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + 60


def rres_problem(rres, rreq: dict) -> str:
    """Why this answer is not an acknowledgement of `rreq`, or "" when it is."""
    if not isinstance(rres, dict):
        return "RRes is not a JSON object"
    if rres.get("messageType") == "Erro":
        return f"Erro {rres.get('errorCode', '?')}: {rres.get('errorDescription', '')}".strip()
    if rres.get("messageType") != "RRes":
        return f"messageType {rres.get('messageType')!r} instead of RRes"
    for key in ("threeDSServerTransID", "acsTransID", "dsTransID"):
        if str(rres.get(key, "")).lower() != rreq[key]:
            return f"RRes {key} does not echo the RReq"
    if rres.get("resultsStatus") != RESULTS_STATUS_RECEIVED:
        return f"resultsStatus {rres.get('resultsStatus')!r}"
    return ""


def _post(delivery: RReqDelivery) -> _Try:
    if not ds_url_allowed(delivery.url):
        # Checked again at send time: a row written before the allowlist changed, or by other code.
        return _refused(DestinationNotAllowed("the dsURL is not in DS_URL_ALLOWLIST"))
    body = json.dumps(delivery.message, ensure_ascii=False, separators=(",", ":")).encode()
    timeout = settings.OUTBOUND_HTTP_TIMEOUT_SECONDS
    try:
        with guarded_session() as session:
            response = session.post(
                delivery.url,
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"},
                timeout=(timeout, timeout),
                allow_redirects=False,
            )
    except DestinationNotAllowed as exc:
        return _refused(exc)
    except Exception as exc:  # whatever happens ends on the attempt row, never as a stuck claim
        name = type(exc).__name__
        return _Try(False, error=f"{name}: {scrub(str(exc))}", error_class=name)
    excerpt = scrub(response.text[: 4 * EXCERPT_CHARS])[:EXCERPT_CHARS]
    if not 200 <= response.status_code < 300:
        return _Try(False, error=f"HTTP {response.status_code}", status_code=response.status_code, excerpt=excerpt)
    try:
        rres = response.json()
    except ValueError:
        return _Try(False, error="RRes is not JSON", status_code=response.status_code, excerpt=excerpt, error_class="InvalidJSON")
    results_status = rres.get("resultsStatus", "") if isinstance(rres, dict) else ""
    results_status = results_status if isinstance(results_status, str) else ""
    problem = rres_problem(rres, delivery.message)
    return _Try(
        not problem,
        error=problem,
        status_code=response.status_code,
        results_status=results_status[:2],
        excerpt=excerpt,
        error_class="InvalidRRes" if problem else "",
    )


def _refused(exc: DestinationNotAllowed) -> _Try:
    # Nothing was sent and nothing came back: no excerpt, and no further try.
    return _Try(False, error=str(exc), error_class="DestinationNotAllowed", permanent=True)


def rreq_attempt(*, delivery_id: int, task_id: str = "") -> float | None:
    """Make one try if the RReq still needs one. Returns the seconds to wait before the next try,
    or None when no further try is to be scheduled (by this caller)."""
    now = timezone.now()
    claimed = RReqDelivery.objects.filter(
        Q(status=RReqDelivery.PENDING) | Q(status=RReqDelivery.SENDING, next_attempt_at__lte=now),
        pk=delivery_id,
        tries__lt=F("max_tries"),
    ).update(status=RReqDelivery.SENDING, tries=F("tries") + 1, next_attempt_at=now + timedelta(seconds=_lease_seconds()))
    if not claimed:
        logger.info("rreq %s: nothing to send (finished, or a try is in progress)", delivery_id)
        return None
    delivery = RReqDelivery.objects.select_related("issuer").get(pk=delivery_id)
    started_at, t0 = timezone.now(), time.monotonic()
    result = _post(delivery)
    duration_ms = int((time.monotonic() - t0) * 1000)
    return _record_try(delivery, result, started_at=started_at, duration_ms=duration_ms, task_id=task_id)


def _record_try(delivery: RReqDelivery, result: _Try, *, started_at, duration_ms: int, task_id: str) -> float | None:
    now = timezone.now()
    delay = None
    fields = {"last_error": result.error[:255], "results_status": result.results_status}
    if result.ok:
        fields.update(status=RReqDelivery.SUCCEEDED, finished_at=now, next_attempt_at=None)
    elif not result.permanent and delivery.tries < delivery.max_tries:
        delay = retry_delay(tries=delivery.tries)
        fields.update(status=RReqDelivery.PENDING, next_attempt_at=now + timedelta(seconds=delay))
    else:
        fields.update(status=RReqDelivery.FAILED, finished_at=now, next_attempt_at=None)
    with transaction.atomic():
        RReqAttempt.objects.create(
            delivery=delivery,
            number=delivery.tries,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=result.status_code,
            results_status=result.results_status,
            error=result.error[:255],
            error_class=result.error_class,
            response_excerpt=result.excerpt,
            task_id=task_id or "",
        )
        # If this try outlived its claim and another worker took over, the newer try decides.
        updated = RReqDelivery.objects.filter(pk=delivery.pk, status=RReqDelivery.SENDING, tries=delivery.tries).update(**fields)
        if updated and fields["status"] in RReqDelivery.TERMINAL:
            audit_record(
                issuer=delivery.issuer,
                kind="threeds.rres_received" if result.ok else "threeds.rreq_failed",
                actor="ds" if result.ok else "acs",
                acs_trans_id=delivery.transaction_id,
                obj=delivery,
                data={
                    "tries": delivery.tries, "status_code": result.status_code,
                    "resultsStatus": result.results_status or None, "error": result.error,
                },
            )
    level = logging.INFO if result.ok or delay is not None else logging.WARNING
    logger.log(
        level, "rreq %s of %s try %s/%s: %s -> %s", delivery.pk, delivery.transaction_id, delivery.tries,
        delivery.max_tries, result.error or f"HTTP {result.status_code}", fields["status"] if updated else "superseded",
    )
    return delay if updated else None


# ---------------------------------------------------------------- staff and beat


def rreq_retry(*, delivery: RReqDelivery, actor: str) -> None:
    """Another round of tries for a failed RReq (the DS was down longer than the retries)."""
    if delivery.status != RReqDelivery.FAILED:
        raise Conflict("Only a failed RReq can be sent again.", code="rreq_not_failed")
    if not delivery.url:
        raise Conflict("The AReq named no dsURL to send the RReq to.", code="rreq_no_ds_url")
    with transaction.atomic():
        updated = RReqDelivery.objects.filter(pk=delivery.pk, status=RReqDelivery.FAILED).update(
            status=RReqDelivery.PENDING,
            finished_at=None,
            next_attempt_at=timezone.now(),
            max_tries=F("tries") + settings.OUTBOUND_MAX_TRIES,
        )
        if not updated:
            raise Conflict("The RReq changed meanwhile; reload and try again.", code="rreq_changed")
        audit_record(
            issuer=delivery.issuer, kind="threeds.rreq_retried", actor=actor, acs_trans_id=delivery.transaction_id,
            obj=delivery, data={},
        )
        _enqueue(delivery.pk)


def rreq_resume_stalled(*, overdue_seconds: int = OVERDUE_SECONDS) -> int:
    """Beat: enqueue again the RReqs whose task was lost, so a broker restart or a killed worker
    only delays an RReq. A duplicate task is harmless: only one claim succeeds."""
    from apps.threeds.tasks import rreq_send

    now = timezone.now()
    stalled = RReqDelivery.objects.filter(tries__lt=F("max_tries")).filter(
        Q(status=RReqDelivery.PENDING, next_attempt_at__lt=now - timedelta(seconds=overdue_seconds))
        | Q(status=RReqDelivery.SENDING, next_attempt_at__lt=now)
    )
    ids = list(stalled.values_list("pk", flat=True)[:1000])
    for delivery_id in ids:
        rreq_send.delay(delivery_id)
    return len(ids) + _rreq_fail_abandoned(now=now)


def _rreq_fail_abandoned(*, now) -> int:
    """A last try whose worker died leaves a claim that no task may take over (no tries left):
    it ends failed, visibly, instead of sending forever."""
    failed = 0
    abandoned = RReqDelivery.objects.filter(status=RReqDelivery.SENDING, next_attempt_at__lt=now, tries__gte=F("max_tries"))
    for delivery in abandoned.select_related("issuer")[:1000]:
        error = "The last try was lost (worker stopped) and no tries are left."
        with transaction.atomic():
            if RReqDelivery.objects.filter(pk=delivery.pk, status=RReqDelivery.SENDING, tries=delivery.tries).update(
                status=RReqDelivery.FAILED, finished_at=now, next_attempt_at=None, last_error=error
            ):
                failed += 1
                audit_record(
                    issuer=delivery.issuer, kind="threeds.rreq_failed", actor="acs", acs_trans_id=delivery.transaction_id,
                    obj=delivery, data={"tries": delivery.tries, "error": error},
                )
    return failed
