"""SMS deliveries (SPEC §3.5): created inside the caller's transaction, sent one try at a time by
the `sms.send` task, updated by provider status callbacks, and cleaned up.

The message body holds the OTP, so it exists in clear only in memory: sealed at rest with the
delivery id as associated data, wiped once no provider will need it, never in a task argument.
"""

import json
import logging
import random
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from apps.audit import services as audit_services
from apps.audit.services import audit_record
from apps.core import sql as core_sql
from apps.core.crypto import new_token
from apps.core.exceptions import ApplicationError
from apps.core.logging import scrub, sensitive
from apps.otp.models import OtpCode
from apps.sms.models import BACKENDS, PRIMARY, TWILIO, SmsAttempt, SmsDelivery, SmsProviderConfig
from apps.sms.selectors import sms_deliveries_overdue_ids
from apps.sms.providers import (
    PermanentSmsError,
    SendResult,
    SmsError,
    SmsProvider,
    TransientSmsError,
    provider_for,
    provider_from_config,
    provider_from_settings,
    providers_for,
)

logger = logging.getLogger(__name__)

ACTOR = "system:sms"
BACKEND_NAMES = tuple(name for name, _ in BACKENDS)
# An OTP lives at most 10 minutes: a body older than this is never worth sending.
BODY_RETENTION = timedelta(hours=1)


def mask_phone(e164: str) -> str:
    """+81 ••• •••• 1234, like the challenge page."""
    number = phonenumbers.parse(e164)
    return f"+{number.country_code} ••• •••• {str(number.national_number)[-4:]}"


def _e164(to: str) -> str:
    try:
        number = phonenumbers.parse(to)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number) or not to.startswith("+"):
        raise ApplicationError("The destination is not an E.164 number.", code="sms_invalid_destination", fields={"to": ["Not an E.164 number."]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sms_delivery_create(
    *,
    issuer,
    to: str,
    body: str,
    sender_id: str = "",
    secret: str = "",
    otp_code=None,
    acs_trans_id=None,
    purpose: str = "otp",
) -> SmsDelivery:
    """Record an SMS to send and enqueue `sms.send` once the caller's transaction commits.

    `secret` (the OTP) is kept with the body so the worker can keep it out of every log line."""
    if not body:
        raise ApplicationError("An SMS needs a body.", code="sms_empty_body")
    number = _e164(to)
    delivery = SmsDelivery(
        issuer=issuer,
        to=number,
        masked_to=mask_phone(number),
        sender_id=sender_id[:16],
        purpose=purpose,
        otp_code=otp_code,
        acs_trans_id=acs_trans_id,
    )
    delivery.seal_body(json.dumps({"body": body, "secret": secret}))
    delivery.save()
    delivery_id = str(delivery.pk)
    transaction.on_commit(lambda: sms_delivery_enqueue(delivery_id=delivery_id))
    return delivery


def sms_delivery_enqueue(*, delivery_id: str) -> None:
    from apps.sms.tasks import sms_send

    try:
        sms_send.delay(delivery_id)  # the id only: never the body, code or number
    except Exception:
        # Committed already: the caller must not fail now. The row stays pending and
        # sms_deliveries_resume enqueues it again.
        logger.exception("Could not enqueue SMS delivery %s; it will be resumed", delivery_id)


# ---------------------------------------------------------------- sending


def claim_lease_seconds() -> float:
    """How long a claimed try may still be in flight: one connect and one read timeout, plus margin.
    Past that, whoever claimed it is gone."""
    return settings.OUTBOUND_HTTP_TIMEOUT_SECONDS * 2 + 5


def _below_visibility_timeout(seconds: float) -> float:
    # Redis hands a task with a countdown to a worker at once and redelivers it if it is not
    # acknowledged within the visibility timeout: every wait stays well below it.
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    return max(0.0, min(seconds, visibility / 2))


def backoff_seconds(tries_done: int) -> float:
    """Exponential backoff with jitter (half fixed, half random), capped."""
    ceiling = min(settings.OUTBOUND_BACKOFF_MAX_SECONDS, settings.OUTBOUND_BACKOFF_BASE_SECONDS * 2 ** max(0, tries_done - 1))
    return _below_visibility_timeout(random.uniform(ceiling / 2, ceiling))


@dataclass(frozen=True)
class _Claim:
    """A claimed try and everything sending and recording it needs, read once."""

    delivery_id: uuid.UUID
    to: str
    sender_id: str
    masked_to: str
    purpose: str
    attempt_id: int
    role: str
    try_number: int
    callback_token: str
    provider: SmsProvider
    message: dict


# Returned by the fast path for anything but the common case: the general path decides.
_GENERAL = object()


def sms_delivery_send(*, delivery_id, task_id: str = "") -> float | None:
    """Make the next try of a delivery. Returns the seconds to wait before calling again, or None
    when nothing is left to do. Safe to call again after a crash or twice at once: a try is
    claimed in the database first, and a delivery a provider accepted is never sent again."""
    claim = _claim_first_try(delivery_id, task_id) if _fast_sql() else _GENERAL
    if claim is _GENERAL:
        claim = _claim_next_try(delivery_id, task_id)
    if not isinstance(claim, _Claim):
        return claim
    with sensitive(claim.message["body"], claim.message.get("secret")):
        return _make_try(claim)


def _fast_sql() -> bool:
    # The fast path's statements (UPDATE inside WITH, FOR UPDATE in a CTE) are PostgreSQL's;
    # elsewhere (SQLite in development and tests) the general path does everything.
    return connection.vendor == "postgresql"


# ---------------------------------------------------------------- fast path: the first try
#
# Nearly every SMS goes out at its first try. On PostgreSQL that case is one statement claiming
# the try (in autocommit), the provider call, then one statement recording the outcome, instead
# of two ORM transactions of seven round trips each. The general path below keeps every rule in
# plain ORM code and handles everything else: retries, interrupted tries, dead codes, expired
# bodies, the fallback provider, and any claim that lost a race.

# One statement: the delivery row is locked and counted as claimed only if this is its first
# claim (claims = 0) and it still needs one (pending, no retry scheduled, body kept, code alive);
# READ COMMITTED re-checks that on the newest row version once the lock is free, so a claim,
# cancel or purge committed meanwhile makes it match nothing. Then the primary provider's try 1
# is inserted, with the issuer's active primary row if there is one, else the settings'
# provider (passed in). The answer is the delivery, the provider row and the try's id; no row,
# or no try id, means the general path decides.
_FIRST_TRY_CLAIM = """
WITH delivery AS (
    UPDATE sms_smsdelivery d SET claims = d.claims + 1, updated_at = %(now)s
    WHERE d.id = %(delivery_id)s AND d.claims = 0 AND d.status = %(pending)s AND d.next_attempt_at IS NULL
      AND d.body_blob IS NOT NULL
      AND (d.otp_code_id IS NULL OR EXISTS (
          SELECT 1 FROM otp_otpcode c WHERE c.id = d.otp_code_id AND c.state = %(code_active)s AND c.expires_at > %(now)s))
    RETURNING d.id, d.issuer_id, d."to", d.sender_id, d.masked_to, d.purpose, d.body_key_id, d.body_blob
), provider AS (
    SELECT delivery.*, p.id AS config_id, p.backend, p.account_sid, p.auth_token_key_id, p.auth_token_blob,
           p.from_number, p.messaging_service_sid
    FROM delivery
    LEFT JOIN sms_smsproviderconfig p ON p.issuer_id = delivery.issuer_id AND p.role = %(primary)s AND p.is_active
), attempt AS (
    INSERT INTO sms_smsattempt (delivery_id, provider_role, provider, account_sid, try_number, state,
                                provider_message_id, provider_status, error_code, error_message, started_at,
                                celery_task_id, callback_token)
    SELECT id, %(primary)s, COALESCE(backend, %(default_backend)s),
           CASE WHEN config_id IS NULL THEN %(default_account_sid)s WHEN backend = %(twilio)s THEN account_sid ELSE '' END,
           1, %(claimed)s, '', '', '', '', %(now)s, %(task_id)s, %(token)s
    FROM provider
    WHERE CASE WHEN config_id IS NULL THEN %(default_backend)s <> '' ELSE backend = ANY(%(backends)s) END
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT provider.*, (SELECT id FROM attempt) FROM provider
"""


def _execute(sql: str, params: dict) -> list[tuple]:
    # Prepared once per connection (PostgreSQL parses and plans these CTEs once, not per SMS).
    with core_sql.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _claim_first_try(delivery_id, task_id: str) -> "_Claim | object":
    """Claim the first try of a pending delivery, or say that the general path must decide."""
    try:
        delivery_id = uuid.UUID(str(delivery_id))
    except ValueError:
        return _GENERAL  # not an id: the ORM refuses it as it always did (not a database error to retry)
    default = provider_from_settings(PRIMARY)
    token = new_token(24)
    rows = _execute(_FIRST_TRY_CLAIM, {
        "delivery_id": delivery_id, "pending": SmsDelivery.PENDING, "code_active": OtpCode.ACTIVE,
        "now": timezone.now(), "primary": PRIMARY, "twilio": TWILIO, "backends": list(BACKEND_NAMES),
        "default_backend": default.name if default is not None else "",
        "default_account_sid": default.account_sid if default is not None else "",
        "claimed": SmsAttempt.CLAIMED, "task_id": task_id or "", "token": token,
    })
    if not rows or rows[0][-1] is None:
        # Not pending, not a first try, or no primary provider: nothing was sent or claimed
        # (at most the claim count went up, which only keeps this path away from the row).
        return _GENERAL
    (pk, issuer_id, to, sender_id, masked_to, purpose, body_key_id, body_blob,
     config_id, backend, account_sid, key_id, blob, from_number, service_sid, attempt_id) = rows[0]
    if config_id is None:
        provider = default
    else:
        provider = provider_from_config(SmsProviderConfig(
            issuer_id=issuer_id, role=PRIMARY, backend=backend, account_sid=account_sid, auth_token_key_id=key_id,
            auth_token_blob=blob, from_number=from_number, messaging_service_sid=service_sid,
        ))
    message = json.loads(SmsDelivery(id=pk, body_key_id=body_key_id, body_blob=body_blob).unseal_body())
    return _Claim(
        delivery_id=pk, to=to, sender_id=sender_id, masked_to=masked_to, purpose=purpose,
        attempt_id=attempt_id, role=PRIMARY, try_number=1, callback_token=token, provider=provider, message=message,
    )


# ---------------------------------------------------------------- general path


def _claim_next_try(delivery_id, task_id: str) -> "_Claim | float | None":
    now = timezone.now()
    with transaction.atomic():
        delivery = SmsDelivery.objects.select_for_update(of=("self",)).select_related("otp_code", "issuer").filter(pk=delivery_id).first()
        if delivery is None or delivery.status != SmsDelivery.PENDING:
            return None  # done already (e.g. a redelivered task after success)
        if delivery.next_attempt_at and delivery.next_attempt_at > now:
            return _below_visibility_timeout((delivery.next_attempt_at - now).total_seconds())

        attempts = list(delivery.attempts.all())
        for attempt in attempts:
            if attempt.state != SmsAttempt.CLAIMED:
                continue
            age = (now - attempt.started_at).total_seconds()
            if age < claim_lease_seconds():
                return _below_visibility_timeout(claim_lease_seconds() - age + 0.1)  # maybe still in flight
            attempt.state, attempt.finished_at = SmsAttempt.INTERRUPTED, now
            attempt.error_code, attempt.error_message = "interrupted", "The worker stopped before the provider answered."
            attempt.save(update_fields=["state", "finished_at", "error_code", "error_message"])

        if _otp_is_dead(delivery, now):
            _finish(delivery, SmsDelivery.CANCELLED, error_code="otp_inactive", attempts=attempts)
            return None
        sealed = delivery.unseal_body()
        if sealed is None:
            _finish(delivery, SmsDelivery.FAILED, error_code="expired", attempts=attempts)
            return None

        for role, provider in providers_for(issuer_id=delivery.issuer_id):
            tries = [a for a in attempts if a.provider_role == role]
            if len(tries) >= settings.OUTBOUND_MAX_TRIES or any(a.state == SmsAttempt.FAILED_PERMANENT for a in tries):
                continue  # this provider gave up
            try:
                with transaction.atomic():
                    attempt = SmsAttempt.objects.create(
                        delivery=delivery,
                        provider_role=role,
                        provider=provider.name,
                        account_sid=provider.account_sid,
                        try_number=len(tries) + 1,
                        state=SmsAttempt.CLAIMED,
                        started_at=now,
                        celery_task_id=task_id or "",
                        callback_token=new_token(24),
                    )
            except IntegrityError:
                return _below_visibility_timeout(claim_lease_seconds())  # claimed by someone else just now
            # Every claim counts itself on the delivery row (locked above): the first-try claim
            # then finds claims > 0 and gives way.
            delivery.claims += 1
            delivery.save(update_fields=["claims", "updated_at"])
            return _Claim(
                delivery_id=delivery.pk, to=delivery.to, sender_id=delivery.sender_id, masked_to=delivery.masked_to,
                purpose=delivery.purpose, attempt_id=attempt.pk, role=role, try_number=attempt.try_number,
                callback_token=attempt.callback_token, provider=provider, message=json.loads(sealed),
            )

        last_error = next((a.error_code for a in reversed(attempts) if a.error_code), "") or "no_provider"
        _finish(delivery, SmsDelivery.FAILED, error_code=last_error, attempts=attempts)
        return None


def _otp_is_dead(delivery: SmsDelivery, now) -> bool:
    """A code that was used, replaced or expired is not worth an SMS (it would only confuse)."""
    code = delivery.otp_code
    return code is not None and (code.state != code.ACTIVE or code.expires_at <= now)


def _callback_url(token: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse("sms:twilio-status", args=[token])


def _make_try(claim: _Claim) -> float | None:
    provider = claim.provider
    started = time.monotonic()
    error: SmsError | None = None
    result = None
    try:
        result = provider.send(
            to=claim.to,
            body=claim.message["body"],
            sender=claim.sender_id,
            status_callback=_callback_url(claim.callback_token) if provider.name == TWILIO else "",
            reference=str(claim.delivery_id),
        )
    except SmsError as exc:
        error = exc
    except Exception as exc:  # an adapter bug counts as a failed try, bounded like any other
        logger.exception("SMS provider %s crashed", provider.name)
        error = TransientSmsError(f"Internal error: {exc.__class__.__name__}", code="internal")
    duration_ms = int((time.monotonic() - started) * 1000)
    logger.info(
        "SMS delivery %s %s try %d via %s: %s",
        claim.delivery_id, claim.role, claim.try_number, provider.name,
        "accepted" if error is None else f"{error.__class__.__name__} {error.code}",
    )
    if error is None:
        return _record_success(claim, result, duration_ms)
    return _record_failure(claim, error, duration_ms)


# One statement: the delivery row locked first, then the attempt (every writer of both takes
# them in this order), the delivery accepted if still pending, and the audit event written only
# if it was. The attempt is recorded even if the try was meanwhile declared interrupted: the
# provider accepted it.
_RECORD_SUCCESS = """
WITH delivery AS (
    SELECT id FROM sms_smsdelivery WHERE id = %(delivery_id)s FOR UPDATE
), attempt AS (
    UPDATE sms_smsattempt SET state = %(succeeded)s, provider_message_id = %(message_id)s,
        provider_status = %(provider_status)s, finished_at = %(now)s, duration_ms = %(duration_ms)s,
        error_code = '', error_message = ''
    FROM delivery WHERE sms_smsattempt.id = %(attempt_id)s
), accepted AS (
    UPDATE sms_smsdelivery d SET status = %(status)s, provider = %(provider)s, provider_message_id = %(message_id)s,
        accepted_at = %(now)s, next_attempt_at = NULL, error_code = '',
        finished_at = COALESCE(%(finished_at)s, d.finished_at), body_key_id = '', body_blob = NULL,
        updated_at = %(now)s
    FROM delivery WHERE d.id = delivery.id AND d.status = %(pending)s
    RETURNING d.issuer_id, d.acs_trans_id
)
INSERT INTO audit_auditevent (issuer_id, acs_trans_id, kind, actor, object_type, object_id, data, created_at)
SELECT issuer_id, acs_trans_id, %(kind)s, %(actor)s, %(object_type)s, %(object_id)s, %(data)s::jsonb, %(now)s
FROM accepted
"""


def _record_success(claim: _Claim, result: SendResult, duration_ms: int) -> None:
    now = timezone.now()
    status = _normalise_status(result.status)
    status = status if _rank(status) > 0 else SmsDelivery.QUEUED
    finished_at = now if status in SmsDelivery.FINAL else None
    provider = f"{claim.role}:{claim.provider.name}"
    audit_data = {
        "delivery": str(claim.delivery_id), "to": claim.masked_to, "purpose": claim.purpose, "status": status,
        "provider": provider, "message_id": result.message_id, "try": claim.try_number,
    }
    if _fast_sql():
        _execute(_RECORD_SUCCESS, {
            "delivery_id": claim.delivery_id, "attempt_id": claim.attempt_id, "now": now,
            "succeeded": SmsAttempt.SUCCEEDED, "message_id": result.message_id,
            "provider_status": result.status, "duration_ms": duration_ms,
            "pending": SmsDelivery.PENDING, "status": status, "provider": provider, "finished_at": finished_at,
            "kind": "sms.sent", "actor": ACTOR, "object_type": SmsDelivery._meta.label_lower,
            "object_id": str(claim.delivery_id), "data": json.dumps(_audit_clean(audit_data)),
        })
        return None

    with transaction.atomic():
        delivery = SmsDelivery.objects.select_for_update(of=("self",)).select_related("issuer").get(pk=claim.delivery_id)
        SmsAttempt.objects.filter(pk=claim.attempt_id).update(
            state=SmsAttempt.SUCCEEDED, provider_message_id=result.message_id, provider_status=result.status,
            finished_at=now, duration_ms=duration_ms, error_code="", error_message="",
        )
        if delivery.status != SmsDelivery.PENDING:
            return None
        delivery.status, delivery.provider, delivery.provider_message_id = status, provider, result.message_id
        delivery.accepted_at, delivery.next_attempt_at, delivery.error_code = now, None, ""
        delivery.finished_at = finished_at or delivery.finished_at
        _wipe_body(delivery)
        delivery.save(update_fields=["status", "provider", "provider_message_id", "accepted_at", "next_attempt_at",
                                     "error_code", "finished_at", "body_key_id", "body_blob", "updated_at"])
        audit_record(issuer=delivery.issuer, kind="sms.sent", actor=ACTOR, acs_trans_id=delivery.acs_trans_id,
                     obj=delivery, data=audit_data)
    return None


def _record_failure(claim: _Claim, error: SmsError, duration_ms: int) -> float | None:
    now = timezone.now()
    permanent = isinstance(error, PermanentSmsError)
    with transaction.atomic():
        delivery = SmsDelivery.objects.select_for_update(of=("self",)).select_related("issuer").get(pk=claim.delivery_id)
        SmsAttempt.objects.filter(pk=claim.attempt_id, state=SmsAttempt.CLAIMED).update(
            state=SmsAttempt.FAILED_PERMANENT if permanent else SmsAttempt.FAILED_TRANSIENT,
            error_code=error.code[:32], error_message=scrub(error.message)[:255],
            finished_at=now, duration_ms=duration_ms,
        )
        if delivery.status != SmsDelivery.PENDING:
            return None
        if permanent and error.recipient:
            _finish(delivery, SmsDelivery.FAILED, error_code=error.code, attempts=list(delivery.attempts.all()))
            return None
        if not permanent and claim.try_number < settings.OUTBOUND_MAX_TRIES:
            wait = backoff_seconds(claim.try_number)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
            delivery.save(update_fields=["next_attempt_at", "updated_at"])
            return wait
        # This provider gave up: the next step goes straight to the fallback, or fails.
        delivery.next_attempt_at = None
        delivery.save(update_fields=["next_attempt_at", "updated_at"])
        return 0.0


def _audit_clean(data: dict) -> dict:
    # What audit_record would store (its own cleaning), for the event written by SQL above.
    # apps.audit has no public name for it yet.
    return audit_services._clean(json.loads(json.dumps(data, default=str)))


def _wipe_body(delivery: SmsDelivery) -> None:
    delivery.body_key_id, delivery.body_blob = "", None


def _audit_data(delivery: SmsDelivery) -> dict:
    return {"delivery": str(delivery.pk), "to": delivery.masked_to, "purpose": delivery.purpose, "status": delivery.status}


def _finish(delivery: SmsDelivery, status: str, *, error_code: str, attempts: list[SmsAttempt]) -> None:
    """No provider will send it: final status, body wiped, and the reason on the record."""
    now = timezone.now()
    delivery.status, delivery.error_code = status, error_code[:32]
    delivery.finished_at, delivery.next_attempt_at = now, None
    _wipe_body(delivery)
    delivery.save()
    audit_record(
        issuer=delivery.issuer, kind=f"sms.{status}", actor=ACTOR, acs_trans_id=delivery.acs_trans_id, obj=delivery,
        data={**_audit_data(delivery), "error_code": delivery.error_code, "tries": len(attempts)},
    )


# ---------------------------------------------------------------- status callbacks

# Twilio's statuses before "sent" that mean "accepted, not yet out".
_QUEUED_ALIASES = {"accepted", "scheduled", "queued"}


def _normalise_status(status: str) -> str:
    status = (status or "").lower()
    return SmsDelivery.QUEUED if status in _QUEUED_ALIASES else status


def _rank(status: str) -> int:
    return SmsDelivery.RANK.get(_normalise_status(status), 0)


def sms_attempt_for_callback(*, token: str) -> SmsAttempt | None:
    return SmsAttempt.objects.select_related("delivery").filter(callback_token=token).first()


def sms_callback_auth_token(*, attempt: SmsAttempt) -> str:
    """The auth token of the account that sent this try: it signs that account's callbacks."""
    provider = provider_for(issuer_id=attempt.delivery.issuer_id, role=attempt.provider_role)
    if provider is None or provider.account_sid != attempt.account_sid:
        return ""
    return provider.auth_token


def sms_status_apply(*, attempt_id: int, message_sid: str, status: str, error_code: str = "") -> bool:
    """Apply a provider status to a try and its delivery. Statuses only move forward, so a
    repeated or late callback changes nothing. Returns whether anything changed."""
    status = _normalise_status(status)
    if _rank(status) == 0 or status == SmsDelivery.CANCELLED:
        return False
    now = timezone.now()
    with transaction.atomic():
        delivery_id = SmsAttempt.objects.filter(pk=attempt_id).values_list("delivery_id", flat=True).first()
        if delivery_id is None:
            return False
        # Delivery row first, then the attempt: the same order as the sender.
        delivery = SmsDelivery.objects.select_for_update().get(pk=delivery_id)
        attempt = SmsAttempt.objects.select_for_update().get(pk=attempt_id)
        if not attempt.provider_message_id or attempt.provider_message_id != message_sid:
            return False
        changed = False
        if _rank(status) > _rank(attempt.provider_status):
            attempt.provider_status = status
            if error_code:
                attempt.error_code = error_code[:32]
            attempt.save(update_fields=["provider_status", "error_code"])
            changed = True
        if delivery.provider_message_id == message_sid and _rank(status) > _rank(delivery.status):
            delivery.status = status
            if status in SmsDelivery.FINAL:
                delivery.finished_at = now
                if status != SmsDelivery.DELIVERED:
                    delivery.error_code = (error_code or status)[:32]
                audit_record(
                    issuer=delivery.issuer, kind=f"sms.{status}", actor="provider:twilio",
                    acs_trans_id=delivery.acs_trans_id, obj=delivery,
                    data={**_audit_data(delivery), "message_id": message_sid, "error_code": error_code},
                )
            delivery.save()
            changed = True
        return changed


# ---------------------------------------------------------------- housekeeping


def sms_bodies_purge(*, older_than: timedelta = BODY_RETENTION) -> int:
    """Wipe every body older than `older_than`; a delivery still pending by then fails as expired."""
    cutoff = timezone.now() - older_than
    stale = SmsDelivery.objects.filter(body_blob__isnull=False, created_at__lt=cutoff)
    for delivery_id in list(stale.filter(status=SmsDelivery.PENDING).values_list("pk", flat=True)[:1000]):
        with transaction.atomic():
            delivery = SmsDelivery.objects.select_for_update().filter(pk=delivery_id, status=SmsDelivery.PENDING).first()
            if delivery is not None:
                _finish(delivery, SmsDelivery.FAILED, error_code="expired", attempts=list(delivery.attempts.all()))
    return stale.update(body_blob=None, body_key_id="")


def sms_deliveries_resume() -> int:
    """Enqueue again pending deliveries whose task was lost (broker down at commit, queue
    purged). A duplicate task is harmless: the claim lets only one try through."""
    ids = sms_deliveries_overdue_ids(grace_seconds=max(60.0, claim_lease_seconds() * 2))
    for delivery_id in ids:
        sms_delivery_enqueue(delivery_id=str(delivery_id))
    return len(ids)


# ---------------------------------------------------------------- provider accounts (staff)

SMS_PROVIDER_FIELDS = ("role", "backend", "is_active", "account_sid", "from_number", "messaging_service_sid")


def _sms_provider_config_validate(config: SmsProviderConfig, *, token_needed: bool) -> None:
    errors: dict[str, list[str]] = {}
    if config.backend == TWILIO:
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", config.account_sid or ""):
            errors["account_sid"] = ["A Twilio Account SID: AC followed by 32 hex digits."]
        if not config.from_number and not config.messaging_service_sid:
            errors["from_number"] = ["Set a From number or a Messaging Service SID."]
        if config.messaging_service_sid and not re.fullmatch(r"MG[0-9a-fA-F]{32}", config.messaging_service_sid):
            errors["messaging_service_sid"] = ["A Messaging Service SID: MG followed by 32 hex digits."]
        if token_needed:
            errors["auth_token"] = ["Enter the account's auth token."]
    if SmsProviderConfig.objects.filter(issuer_id=config.issuer_id, role=config.role).exclude(pk=config.pk).exists():
        errors["role"] = ["This issuer has a provider for this role already."]
    if errors:
        raise ApplicationError("Invalid SMS provider.", code="invalid_sms_provider", fields=errors)


def _sms_provider_audit_data(config: SmsProviderConfig, **extra) -> dict:
    # Never the auth token, only whether it was set.
    return {"role": config.role, "backend": config.backend, "is_active": config.is_active,
            "account_sid": config.account_sid, **extra}


@transaction.atomic
def sms_provider_config_create(*, issuer, actor: str, auth_token: str = "", **fields) -> SmsProviderConfig:
    config = SmsProviderConfig(issuer=issuer, **{f: fields[f] for f in SMS_PROVIDER_FIELDS if f in fields})
    _sms_provider_config_validate(config, token_needed=not auth_token)
    if auth_token:
        config.set_auth_token(auth_token)
    config.save()
    audit_record(issuer=issuer, kind="sms_provider.created", actor=actor, obj=config,
                 data=_sms_provider_audit_data(config, auth_token_set=bool(auth_token)))
    return config


@transaction.atomic
def sms_provider_config_update(*, config: SmsProviderConfig, actor: str, auth_token: str = "", **changes) -> SmsProviderConfig:
    fields = [f for f in SMS_PROVIDER_FIELDS if f in changes and changes[f] != getattr(config, f)]
    for field in fields:
        setattr(config, field, changes[field])
    # The token belongs to the account: a new account needs its token typed again.
    token_needed = not auth_token and (not config.auth_token_blob or "account_sid" in fields)
    _sms_provider_config_validate(config, token_needed=token_needed)
    if auth_token:
        config.set_auth_token(auth_token)
    if fields or auth_token:
        config.save()
        audit_record(issuer=config.issuer, kind="sms_provider.updated", actor=actor, obj=config,
                     data=_sms_provider_audit_data(config, fields=fields, auth_token_changed=bool(auth_token)))
    return config


def sms_provider_config_delete(*, config: SmsProviderConfig, actor: str) -> None:
    issuer, data = config.issuer, _sms_provider_audit_data(config, provider=str(config.pk))
    config.delete()
    audit_record(issuer=issuer, kind="sms_provider.deleted", actor=actor, data=data)
