"""Outbound webhooks to an issuer's backend (SPEC §5.4): signed, retried, every try recorded.

A channel on the delivery engine (apps.delivery.engine): the delivery row is written in the
caller's transaction, a task carrying only its id wakes the sender after commit, each try is
claimed by the engine; this module signs, posts and classifies the answer.
"""

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit.services import audit_event, audit_record
from apps.core.crypto import Sealed, seal, unseal
from apps.core.exceptions import Conflict
from apps.core.logging import REDACTED, scrub
from apps.core.outbound_guard import DestinationNotAllowed, guarded_session
from apps.delivery import engine
from apps.webhooks.models import KIND_DELIVER_OTP, WebhookAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300
# Redacted in the display copy whatever the caller declares (normalised: lower case, no "_").
REDACTED_KEYS = {"otp", "pan", "acctnumber"}
EXCERPT_CHARS = 500
# A failed delivery without secrets keeps its payload this long, for a manual retry.
PAYLOAD_RETENTION_DAYS = 7

OK, TRANSIENT, PERMANENT = "ok", "transient", "permanent"
# The receiver may answer next time. Anything else (bad URL, refused TLS, ...) will not change.
TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_WIPED = {"payload_key_id": "", "payload_blob": None}


# ---------------------------------------------------------------- signatures


def webhook_sign(*, secret: str, body: bytes, timestamp: int) -> str:
    """The X-Signature header: HMAC-SHA256 over "<t>.<raw body>"."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def webhook_signature_verify(
    *, secret: str, header: str, body: bytes, tolerance: int = SIGNATURE_TOLERANCE_SECONDS, now: int | None = None
) -> bool:
    """What a receiver does. Several v1 entries are accepted, so a sender may sign with two
    secrets while one is rotated out."""
    timestamp, candidates = None, []
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value.encode())
    if timestamp is None or not candidates:
        return False
    if abs((int(time.time()) if now is None else now) - timestamp) > tolerance:
        return False  # an old signed request replayed
    expected = webhook_sign(secret=secret, body=body, timestamp=timestamp).partition(",v1=")[2].encode()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


# ---------------------------------------------------------------- creating a delivery


def _redacted(value, secret_values: list[str]):
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower().replace("_", "") in REDACTED_KEYS else _redacted(v, secret_values)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(v, secret_values) for v in value]
    if isinstance(value, str):
        for secret in secret_values:
            value = value.replace(secret, REDACTED)
        return value
    if value is not None and not isinstance(value, bool) and str(value) in secret_values:
        return REDACTED
    return value


def _enqueue(delivery_id: int) -> None:
    transaction.on_commit(lambda: engine.wake(WEBHOOK_CHANNEL, delivery_id))


@transaction.atomic
def webhook_delivery_create(
    *, issuer, kind: str, url: str, payload: dict, secret_values: list[str] = (), acs_trans_id=None
) -> WebhookDelivery:
    """Record a webhook to send and send it after the caller's transaction commits.

    `secret_values` (an OTP) are kept out of the display copy and out of every log line of the
    sending; the payload itself is stored only encrypted."""
    secrets = sorted({str(v) for v in secret_values if v}, key=len, reverse=True)
    # Serialised once: every retry sends exactly these bytes.
    body = json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))
    delivery = WebhookDelivery.objects.create(
        issuer=issuer,
        kind=kind,
        url=url,
        acs_trans_id=acs_trans_id,
        max_tries=settings.OUTBOUND_MAX_TRIES,
        next_attempt_at=timezone.now(),
        display_payload=_redacted(json.loads(body), secrets),
        has_secrets=bool(secrets),
    )
    # The encryption context names the row, so the row must exist first.
    sealed = seal(json.dumps({"body": body, "secret_values": secrets}), context=delivery.payload_context)
    delivery.payload_key_id, delivery.payload_blob = sealed.key_id, sealed.blob
    delivery.save(update_fields=["payload_key_id", "payload_blob"])
    _enqueue(delivery.pk)
    return delivery


# ---------------------------------------------------------------- one try


def classify_status(status_code: int) -> str:
    if 200 <= status_code < 300:
        return OK
    if status_code >= 500 or status_code == 429:
        return TRANSIENT
    # Other 4xx will fail again; a 3xx is not followed (the configured URL is wrong).
    return PERMANENT


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delay-seconds or an HTTP date; None when absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - timezone.now()).total_seconds())


@dataclass
class _Try:
    outcome: str
    error: str = ""
    status_code: int | None = None
    excerpt: str = ""
    error_class: str = ""
    retry_after: float | None = None


def _excerpt(response) -> str:
    try:  # best effort: the status code already decided the outcome
        raw = response.raw.read(4 * EXCERPT_CHARS, decode_content=True) or b""
    except Exception:
        return ""
    return scrub(raw.decode(response.encoding or "utf-8", errors="replace"))[:EXCERPT_CHARS]


def _post(delivery: WebhookDelivery, body: bytes) -> _Try:
    secret = delivery.issuer.get_webhook_secret()
    if not secret:
        return _Try(PERMANENT, error="The issuer has no webhook secret to sign with.", error_class="NoWebhookSecret")
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": str(delivery.pk),  # receivers deduplicate on it
        "X-Signature": webhook_sign(secret=secret, body=body, timestamp=int(time.time())),
    }
    timeout = settings.OUTBOUND_HTTP_TIMEOUT_SECONDS
    session = guarded_session()
    try:
        response = session.post(
            delivery.url, data=body, headers=headers, timeout=(timeout, timeout), allow_redirects=False, stream=True
        )
    except DestinationNotAllowed as exc:
        session.close()
        # Nothing was sent; another try would be refused the same way: failed at once.
        return _Try(PERMANENT, error=str(exc), error_class="DestinationNotAllowed")
    except Exception as exc:  # whatever happens ends on the attempt row, never as a stuck claim
        session.close()
        outcome = TRANSIENT if isinstance(exc, TRANSIENT_ERRORS) else PERMANENT
        name = type(exc).__name__
        return _Try(outcome, error=f"{name}: {scrub(str(exc))}", error_class=name)
    with session, response:
        outcome = classify_status(response.status_code)
        return _Try(
            outcome,
            error="" if outcome == OK else f"HTTP {response.status_code}",
            status_code=response.status_code,
            excerpt=_excerpt(response),
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )


class WebhookChannel(engine.Channel):
    """Webhooks on the delivery engine. 2xx succeeds; 5xx, 429 and network errors are worth another
    try (Retry-After honoured); any other answer or a refused destination will not change."""

    name = "webhooks"
    delivery_model = WebhookDelivery
    attempt_model = WebhookAttempt
    related = ("issuer",)

    def task(self):
        from apps.webhooks.tasks import deliver

        return deliver

    def prepare(self, delivery: WebhookDelivery, number: int):
        if delivery.payload_blob is None:
            return engine.End(WebhookDelivery.FAILED, "payload_wiped", "The payload is no longer stored.")
        sealed = Sealed(delivery.payload_key_id, bytes(delivery.payload_blob))
        return json.loads(unseal(sealed, context=delivery.payload_context))

    def sensitive_values(self, envelope) -> tuple:
        return tuple(envelope["secret_values"])

    def send(self, delivery: WebhookDelivery, envelope) -> engine.Outcome:
        result = _post(delivery, envelope["body"].encode())
        kind = {OK: engine.SUCCESS, TRANSIENT: engine.TRANSIENT, PERMANENT: engine.PERMANENT}[result.outcome]
        return engine.Outcome(
            kind, error_code=result.error_class[:32] or (f"http_{result.status_code}" if result.status_code and kind != engine.SUCCESS else ""),
            error_message=result.error, status_code=result.status_code, excerpt=result.excerpt,
            retry_after=result.retry_after, attempt_fields={"error_class": result.error_class},
        )

    def success_fields(self, delivery, envelope, outcome, now) -> dict:
        return {"status": WebhookDelivery.SUCCEEDED, "finished_at": now, "last_error": "", **_WIPED}

    def end_fields(self, delivery, status, error_code, error_message, now, outcome=None) -> dict:
        fields = {"status": status, "finished_at": now, "last_error": (error_message or error_code)[:255]}
        if delivery.has_secrets:
            fields.update(_WIPED)  # an OTP never outlives its delivery
        return fields

    def end_events(self, delivery: WebhookDelivery, status: str, data: dict) -> list:
        succeeded = status == WebhookDelivery.SUCCEEDED
        return [audit_event(
            issuer=delivery.issuer,
            kind="webhook.delivered" if succeeded else "webhook.failed",
            actor="system",
            acs_trans_id=delivery.acs_trans_id,
            obj=delivery,
            data={"webhook": delivery.kind, "tries": data["tries"], "status_code": data["status_code"],
                  "error": data["error"]},
        )]


WEBHOOK_CHANNEL = WebhookChannel()


def webhook_delivery_attempt(*, delivery_id, task_id: str = "") -> float | None:
    """Make the next try if one is due (apps.delivery.engine.deliver). Returns the seconds to wait
    before the next call, or None when this caller has nothing more to do."""
    return engine.deliver(WEBHOOK_CHANNEL, delivery_id, task_id=task_id)


# ---------------------------------------------------------------- staff and beat


def webhook_delivery_retry(*, delivery: WebhookDelivery, actor: str) -> None:
    """Another round of tries for a failed delivery, while its payload is still kept."""
    if delivery.status != WebhookDelivery.FAILED:
        raise Conflict("Only a failed delivery can be retried.", code="webhook_not_failed")
    if delivery.payload_blob is None:
        why = (
            "it carried a one-time secret (an OTP), wiped when the delivery ended; a new delivery (a resend) is needed"
            if delivery.has_secrets
            else f"payloads are kept {PAYLOAD_RETENTION_DAYS} days"
        )
        raise Conflict(f"The payload is no longer stored: {why}.", code="webhook_payload_wiped")
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.FAILED, payload_blob__isnull=False
        ).update(
            status=WebhookDelivery.PENDING,
            finished_at=None,
            next_attempt_at=timezone.now(),
            lease_expires_at=None,
            max_tries=F("tries") + settings.OUTBOUND_MAX_TRIES,
        )
        if not updated:
            raise Conflict("The delivery changed meanwhile; reload and try again.", code="webhook_changed")
        audit_record(
            issuer=delivery.issuer, kind="webhook.retried", actor=actor, acs_trans_id=delivery.acs_trans_id,
            obj=delivery, data={"webhook": delivery.kind},
        )
        _enqueue(delivery.pk)


def webhook_payloads_wipe(*, older_than_days: int = PAYLOAD_RETENTION_DAYS) -> int:
    """Beat clean-up: no encrypted payload outlives its use. Ended deliveries normally wiped
    theirs already (this is the safety net); failed ones without secrets keep theirs for a manual
    retry until `older_than_days`; a delivery still unfinished by then is given up."""
    now = timezone.now()
    cutoff = now - timedelta(days=older_than_days)
    kept = WebhookDelivery.objects.filter(payload_blob__isnull=False)
    given_up = 0
    for delivery in kept.filter(created_at__lt=cutoff).exclude(status__in=WebhookDelivery.TERMINAL).select_related("issuer"):
        with transaction.atomic():
            error = f"Given up after {older_than_days} days unfinished."
            if WebhookDelivery.objects.filter(pk=delivery.pk, status=delivery.status, tries=delivery.tries).update(
                status=WebhookDelivery.FAILED, finished_at=now, next_attempt_at=None, lease_expires_at=None,
                last_error=error, **_WIPED
            ):
                given_up += 1
                audit_record(
                    issuer=delivery.issuer, kind="webhook.failed", actor="system", acs_trans_id=delivery.acs_trans_id,
                    obj=delivery, data={"webhook": delivery.kind, "tries": delivery.tries, "error": error},
                )
    wiped = kept.filter(
        Q(status=WebhookDelivery.SUCCEEDED)
        | Q(status=WebhookDelivery.FAILED, has_secrets=True)
        | Q(status=WebhookDelivery.FAILED, created_at__lt=cutoff)
    ).update(**_WIPED)
    return given_up + wiped


# ---------------------------------------------------------------- DeliverOTP (SPEC §5.4)


def iso_8601_utc(value: datetime) -> str:
    if timezone.is_naive(value):
        raise ValueError("An aware datetime is needed.")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def deliver_otp_payload(
    *,
    operation_id,
    issuer_id: str,
    card_id: str,
    consumer_id: str,
    acs_trans_id,
    otp: str,
    otp_expires_at: datetime,
    locale: str,
    masked_phone: str,
    merchant_name: str,
    purchase_amount,
    purchase_currency,
    purchase_exponent,
) -> dict:
    return {
        "operationId": str(operation_id),
        "issuerId": issuer_id,
        "cardId": card_id,
        "consumerId": consumer_id,
        "acsTransId": str(acs_trans_id),
        "otp": otp,
        "otpExpiresAt": iso_8601_utc(otp_expires_at),
        "locale": locale,
        "maskedPhone": masked_phone,
        "threeDSDetails": {
            "merchantName": merchant_name,
            "purchaseAmount": purchase_amount,
            "purchaseCurrency": purchase_currency,
            "purchaseExponent": purchase_exponent,
        },
    }


def deliver_otp_enqueue(*, issuer, payload: dict, acs_trans_id) -> WebhookDelivery:
    """Hand the OTP to the issuer's backend, which sends the SMS itself."""
    return webhook_delivery_create(
        issuer=issuer,
        kind=KIND_DELIVER_OTP,
        url=issuer.deliver_otp_url,
        payload=payload,
        secret_values=[payload["otp"]],
        acs_trans_id=acs_trans_id,
    )
