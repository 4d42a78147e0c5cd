"""SMS deliveries (SPEC §3.5): created inside the caller's transaction, sent one try at a time by
the `sms.send` task, updated by provider status callbacks, and cleaned up.

The message body holds the OTP, so it exists in clear only in memory: sealed at rest with the
delivery id as associated data, wiped once no provider will need it, never in a task argument.
"""

import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.audit.services import audit_event, audit_record
from apps.core.crypto import new_token
from apps.core.exceptions import ApplicationError
from apps.core.logging import scrub
from apps.delivery import engine
from apps.sms.models import TWILIO, SmsAttempt, SmsDelivery, SmsProviderConfig
from apps.sms.providers import PermanentSmsError, SmsError, SmsProvider, provider_for, providers_for

logger = logging.getLogger(__name__)

ACTOR = "system:sms"
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
    """Record an SMS to send (one INSERT, in the caller's transaction: the outbox) and wake the
    `sms.send` task once that transaction commits.

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
        next_attempt_at=timezone.now(),
        # Each provider (primary, fallback) gets OUTBOUND_MAX_TRIES tries.
        max_tries=2 * settings.OUTBOUND_MAX_TRIES,
    )
    delivery.seal_body(json.dumps({"body": body, "secret": secret}))
    delivery.save()
    delivery_id = delivery.pk
    transaction.on_commit(lambda: sms_delivery_enqueue(delivery_id=delivery_id))
    return delivery


def sms_delivery_enqueue(*, delivery_id) -> None:
    """Wake the sender for this delivery (the id only: never the body, code or number)."""
    engine.wake(SMS_CHANNEL, delivery_id)


# ---------------------------------------------------------------- the SMS channel


@dataclass(frozen=True)
class _Job:
    """One claimed try: the provider, its role and try number, and the decrypted message."""

    role: str
    provider: SmsProvider
    try_number: int
    callback_token: str
    message: dict
    has_next_provider: bool


class SmsChannel(engine.Channel):
    """SMS on the delivery engine: the primary provider OUTBOUND_MAX_TRIES times, then the
    fallback. Twilio's errors are classified in apps.sms.providers (5xx and 429 transient, any
    other 4xx permanent; an invalid number permanent for every provider)."""

    name = "sms"
    delivery_model = SmsDelivery
    attempt_model = SmsAttempt
    # The OTP code (is it still worth sending?); the issuer is not read: its id is enough.
    related = ("otp_code",)
    succeeded_status = SmsDelivery.QUEUED
    failed_status = SmsDelivery.FAILED

    def task(self):
        from apps.sms.tasks import sms_send

        return sms_send

    def prepare(self, delivery: SmsDelivery, number: int):
        now = timezone.now()
        if _otp_is_dead(delivery, now):
            return engine.End(SmsDelivery.CANCELLED, "otp_inactive")
        sealed = delivery.unseal_body()
        if sealed is None:
            return engine.End(SmsDelivery.FAILED, "expired")
        # The first try needs no look at earlier ones: there are none.
        attempts = list(delivery.attempts.all()) if number > 1 else []
        chain = providers_for(issuer_id=delivery.issuer_id)
        for index, (role, provider) in enumerate(chain):
            tries = [a for a in attempts if a.provider_role == role]
            if len(tries) >= settings.OUTBOUND_MAX_TRIES or any(a.state == SmsAttempt.FAILED_PERMANENT for a in tries):
                continue  # this provider gave up
            return _Job(role=role, provider=provider, try_number=len(tries) + 1, callback_token=new_token(24),
                        message=json.loads(sealed), has_next_provider=index + 1 < len(chain))
        last_error = next((a.error_code for a in reversed(attempts) if a.error_code), "") or "no_provider"
        return engine.End(SmsDelivery.FAILED, last_error)

    def attempt_fields(self, delivery, job: _Job) -> dict:
        return {"provider_role": job.role, "provider": job.provider.name, "account_sid": job.provider.account_sid,
                "try_number": job.try_number, "callback_token": job.callback_token}

    def sensitive_values(self, job: _Job) -> tuple:
        return (job.message["body"], job.message.get("secret"))

    def send(self, delivery: SmsDelivery, job: _Job) -> engine.Outcome:
        provider = job.provider
        try:
            result = provider.send(
                to=delivery.to,
                body=job.message["body"],
                sender=delivery.sender_id,
                status_callback=_callback_url(job.callback_token) if provider.name == TWILIO else "",
                reference=str(delivery.pk),
            )
        except SmsError as error:
            permanent = isinstance(error, PermanentSmsError)
            return engine.Outcome(
                engine.PERMANENT if permanent else engine.TRANSIENT, error_code=error.code,
                error_message=scrub(error.message), final=permanent and error.recipient,
            )
        return engine.Outcome(engine.SUCCESS, attempt_fields={"provider_message_id": result.message_id,
                                                              "provider_status": result.status})

    def next_step(self, delivery, job: _Job, outcome: engine.Outcome) -> str:
        if outcome.final:
            return engine.FAIL  # the number itself is refused: no provider will do better
        if outcome.kind == engine.TRANSIENT and job.try_number < settings.OUTBOUND_MAX_TRIES:
            return engine.RETRY
        # This provider gave up: straight on to the fallback, if there is one.
        return engine.NEXT if job.has_next_provider else engine.FAIL

    def success_fields(self, delivery, job: _Job, outcome: engine.Outcome, now) -> dict:
        message_id, status = outcome.attempt_fields["provider_message_id"], outcome.attempt_fields["provider_status"]
        status = _normalise_status(status)
        status = status if _rank(status) > 0 else SmsDelivery.QUEUED
        fields = {"status": status, "provider": f"{job.role}:{job.provider.name}", "provider_message_id": message_id,
                  "accepted_at": now, "error_code": "", "body_key_id": "", "body_blob": None}
        if status in SmsDelivery.FINAL:
            fields["finished_at"] = now
        return fields

    def end_fields(self, delivery, status: str, error_code: str, error_message: str, now, outcome=None) -> dict:
        # No provider will send it: final status, body wiped, and the reason on the record.
        return {"status": status, "error_code": (error_code or status)[:32], "finished_at": now,
                "body_key_id": "", "body_blob": None}

    def end_events(self, delivery: SmsDelivery, status: str, data: dict) -> list:
        audit = _audit_data(delivery)
        if status in (SmsDelivery.FAILED, SmsDelivery.CANCELLED):
            audit.update(error_code=delivery.error_code, tries=data["tries"])
            kind = f"sms.{status}"
        else:
            audit.update({"provider": delivery.provider, "message_id": delivery.provider_message_id, "try": data["tries"]})
            kind = "sms.sent"
        return [audit_event(issuer_id=delivery.issuer_id, kind=kind, actor=ACTOR, acs_trans_id=delivery.acs_trans_id,
                            obj=delivery, data=audit)]

    def lease_seconds(self) -> float:
        # One connect and one read timeout of the Twilio client, plus margin.
        return 2 * settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + 2


SMS_CHANNEL = SmsChannel()


def sms_delivery_send(*, delivery_id, task_id: str = "") -> float | None:
    """Make the next try of a delivery (apps.delivery.engine.deliver). Returns the seconds to wait
    before calling again, or None when nothing is left to do."""
    return engine.deliver(SMS_CHANNEL, delivery_id, task_id=task_id)


def _otp_is_dead(delivery: SmsDelivery, now) -> bool:
    """A code that was used, replaced or expired is not worth an SMS (it would only confuse)."""
    code = delivery.otp_code
    return code is not None and (code.state != code.ACTIVE or code.expires_at <= now)


def _callback_url(token: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse("sms:twilio-status", args=[token])


def _audit_data(delivery: SmsDelivery) -> dict:
    return {"delivery": str(delivery.pk), "to": delivery.masked_to, "purpose": delivery.purpose, "status": delivery.status}


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
    for delivery in stale.filter(status=SmsDelivery.PENDING).select_related("issuer")[:1000]:
        engine.end(SMS_CHANNEL, delivery, SmsDelivery.FAILED, error_code="expired")
    return stale.update(body_blob=None, body_key_id="")


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
