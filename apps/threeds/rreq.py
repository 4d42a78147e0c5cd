"""RReq to the DS after every challenge (SPEC §3.6, §5.2): built once when the result is recorded,
POSTed to the AReq's dsURL, and retried until an RRes with resultsStatus "01" acknowledges it.

A channel on the delivery engine (apps.delivery.engine): the delivery row is written in the
caller's transaction, a task carrying only its id wakes the sender after commit (queue `rreq`),
each try is claimed by the engine and is an RReqAttempt row; this module posts the RReq and
decides whether the answer acknowledges it. The end (RRes received, or given up) is an audit
event on the transaction.
"""

import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.audit.services import audit_event, audit_record
from apps.core.exceptions import Conflict
from apps.core.logging import scrub
from apps.core.outbound_guard import DestinationNotAllowed, ds_url_allowed, guarded_session
from apps.delivery import engine
from apps.threeds.emv import APP, VERSION_RULES
from apps.threeds.models import Challenge, RReqAttempt, RReqDelivery, Transaction
from apps.threeds.results import eci_for
from apps.threeds.areq import cb_message_extensions

logger = logging.getLogger(__name__)

RESULTS_STATUS_RECEIVED = "01"
EXCERPT_CHARS = 500
# Cartes Bancaires elements that the RReq carries (CB-EXEMPTION is an ARes element only).
RREQ_CB_EXTENSIONS = ("CB-AVALGO", "CB-SCORE")
# EMV authenticationMethod (2.2.0 and later, emv.VERSION_RULES): how the cardholder was authenticated.
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
    decoupled = challenge is not None and challenge.decoupled
    # Decoupled: the ARes's 04, not the OOB challenge's 03.
    authentication_type = (not decoupled and AUTHENTICATION_TYPE.get(method)) or tx.authentication_type
    if authentication_type:
        message["authenticationType"] = authentication_type
    rules = VERSION_RULES.get(tx.message_version)
    if rules is not None and rules.rreq_authentication_method and method in AUTHENTICATION_METHOD:
        message["authenticationMethod"] = AUTHENTICATION_METHOD[method]
    if tx.challenge_cancel:
        message["challengeCancel"] = tx.challenge_cancel
    if (tx.device_channel == APP and rules is not None and rules.rreq_acs_rendering_type and method in ACS_UI_TEMPLATE
            and not decoupled):  # decoupled: nothing was rendered by the SDK
        message["acsRenderingType"] = {"acsInterface": "01", "acsUiTemplate": ACS_UI_TEMPLATE[method]}
    extensions = [e for e in cb_message_extensions(tx) if e["name"] in RREQ_CB_EXTENSIONS]
    if extensions:
        message["messageExtension"] = extensions
    return message


def _enqueue(delivery_id: int) -> None:
    transaction.on_commit(lambda: engine.wake(RREQ_CHANNEL, delivery_id))


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
        )  # never pending: the sweep never sees it
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


class RReqChannel(engine.Channel):
    """RReq on the delivery engine. Only an RRes with resultsStatus "01" that echoes the RReq's ids
    acknowledges it; any other answer, or none, is worth another try, except a dsURL the
    allowlist refuses (no try would pass)."""

    name = "rreq"
    delivery_model = RReqDelivery
    attempt_model = RReqAttempt
    related = ("issuer",)

    def task(self):
        from apps.threeds.tasks import rreq_send

        return rreq_send

    def prepare(self, delivery: RReqDelivery, number: int):
        return delivery.message

    def send(self, delivery: RReqDelivery, message) -> engine.Outcome:
        result = _post(delivery)
        kind = engine.SUCCESS if result.ok else engine.PERMANENT if result.permanent else engine.TRANSIENT
        return engine.Outcome(
            kind, error_code=result.error_class[:32] or ("" if result.ok else "no_rres"), error_message=result.error,
            status_code=result.status_code, excerpt=result.excerpt,
            attempt_fields={"results_status": result.results_status, "error_class": result.error_class},
        )

    def success_fields(self, delivery, message, outcome, now) -> dict:
        return {"status": RReqDelivery.SUCCEEDED, "finished_at": now, "last_error": "",
                "results_status": outcome.attempt_fields["results_status"]}

    def end_fields(self, delivery, status, error_code, error_message, now, outcome=None) -> dict:
        fields = {"status": status, "finished_at": now, "last_error": (error_message or error_code)[:255]}
        if outcome is not None:
            fields["results_status"] = outcome.attempt_fields["results_status"]
        return fields

    def end_events(self, delivery: RReqDelivery, status: str, data: dict) -> list:
        ok = status == RReqDelivery.SUCCEEDED
        outcome = data.get("outcome")
        results_status = outcome.attempt_fields["results_status"] if outcome is not None else ""
        return [audit_event(
            issuer=delivery.issuer,
            kind="threeds.rres_received" if ok else "threeds.rreq_failed",
            actor="ds" if ok else "acs",
            acs_trans_id=delivery.transaction_id,
            obj=delivery,
            data={"tries": data["tries"], "status_code": data["status_code"],
                  "resultsStatus": results_status or None, "error": data["error"]},
        )]


RREQ_CHANNEL = RReqChannel()


def rreq_attempt(*, delivery_id, task_id: str = "") -> float | None:
    """Make the next try if one is due (apps.delivery.engine.deliver). Returns the seconds to wait
    before the next call, or None when this caller has nothing more to do."""
    return engine.deliver(RREQ_CHANNEL, delivery_id, task_id=task_id)


# ---------------------------------------------------------------- staff


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
            lease_expires_at=None,
            max_tries=F("tries") + settings.OUTBOUND_MAX_TRIES,
        )
        if not updated:
            raise Conflict("The RReq changed meanwhile; reload and try again.", code="rreq_changed")
        audit_record(
            issuer=delivery.issuer, kind="threeds.rreq_retried", actor=actor, acs_trans_id=delivery.transaction_id,
            obj=delivery, data={},
        )
        _enqueue(delivery.pk)
