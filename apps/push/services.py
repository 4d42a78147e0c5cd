"""Push deliveries (SPEC §3.4): created inside the caller's transaction, sent one try at a time by
the `push.send` task, resumed by beat when a task was lost.

- Only the delivery id travels in a task message; the push token is read from the Device, in
  clear only in the worker's memory, and declared `sensitive` while it is there.
- A try is claimed with a conditional UPDATE (status and due time), so a redelivered or
  duplicated task never sends again after success and two workers never send the same try.
- Push bombing: at most PUSH_MAX_PER_DEVICE_PER_MINUTE deliveries per device in any 60 s,
  counted under a lock on the device row; a delivery over the limit is recorded as refused.
- A push that cannot be delivered (refused, permanent error, tries exhausted) is reported to the
  OOB flow once, in a transaction that also records the report; until then beat retries it.
"""

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.delivery import engine
from apps.core.logging import scrub, sensitive
from apps.devices.models import Device
from apps.push.models import PushAttempt, PushDelivery
from apps.push.providers import PermanentPushError, PushError, PushResult, TransientPushError, push_provider
from apps.push.selectors import push_deliveries_due_ids
from apps.push.signals import push_undeliverable

logger = logging.getLogger(__name__)

ACTOR = "system:push"
MESSAGE_TYPE = "3ds_authn_request"
RATE_WINDOW = timedelta(seconds=60)
# Beat re-enqueues a delivery only this long after its task should have acted on it, so that a
# task that is merely on its way is not doubled (a doubled one would be harmless, only wasted).
RESUME_GRACE_SECONDS = 15.0


def authn_request_data(*, acs_trans_id) -> dict:
    """The whole content of the push: which pending request to fetch. No merchant, amount or any
    other transaction detail, ever: the app fetches those over the SDK API."""
    return {"type": MESSAGE_TYPE, "acsTransId": str(acs_trans_id)}


def push_authn_request(*, device: Device, acs_trans_id) -> PushDelivery:
    """Record a push telling `device` that the OOB request `acs_trans_id` waits, and send it once
    the caller's transaction commits. Over the per-device limit the delivery is recorded as
    `refused` (error `rate_limited`), nothing is sent and the OOB flow is told, after commit."""
    acs_trans_id = uuid.UUID(str(acs_trans_id))
    limit = settings.PUSH_MAX_PER_DEVICE_PER_MINUTE
    with transaction.atomic():  # a savepoint in the caller's transaction; the lock lasts until it commits
        # Serialise pushes per device, so that parallel requests cannot all pass the count.
        Device.objects.select_for_update().filter(pk=device.pk).values_list("pk", flat=True).first()
        now = timezone.now()
        recent = (
            PushDelivery.objects.filter(device_id=device.pk, created_at__gt=now - RATE_WINDOW)
            .exclude(status=PushDelivery.REFUSED)
            .count()
        )
        refused = recent >= limit
        delivery = PushDelivery.objects.create(
            issuer_id=device.issuer_id,
            device=device,
            acs_trans_id=acs_trans_id,
            platform=device.push_platform,
            max_tries=settings.PUSH_MAX_TRIES,
            status=PushDelivery.REFUSED if refused else PushDelivery.PENDING,
            error_code="rate_limited" if refused else "",
            error_message=f"More than {limit} pushes to this device in 60 s." if refused else "",
            finished_at=now if refused else None,
            # Due now: the first try, or (refused) telling the OOB flow.
            next_attempt_at=now,
        )
        audit_record(
            issuer=device.issuer,
            kind="push.refused" if refused else "push.created",
            actor=ACTOR,
            acs_trans_id=acs_trans_id,
            obj=delivery,
            data={**_audit_data(delivery), **({"reason": "rate_limited", "recent": recent, "limit": limit} if refused else {})},
        )
    delivery_id = str(delivery.pk)
    transaction.on_commit(lambda: push_delivery_enqueue(delivery_id=delivery_id))
    return delivery


def push_delivery_enqueue(*, delivery_id: str) -> None:
    from apps.push.tasks import push_send

    try:
        push_send.delay(delivery_id)  # the id only: never the token
    except Exception:
        # Committed already: the caller must not fail now. push_deliveries_resume sends it later.
        logger.exception("Could not enqueue push delivery %s; it will be resumed", delivery_id)


def _audit_data(delivery: PushDelivery) -> dict:
    return {"delivery": str(delivery.pk), "device": str(delivery.device_id), "platform": delivery.platform}


# ---------------------------------------------------------------- sending


def _lease_seconds() -> float:
    """How long a claimed try may be in flight: up to three requests (access token, send, send
    again after a 401), each with a connect and a read timeout, plus margin. Past that, whoever
    claimed it is gone."""
    return 6 * settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + 5


def push_delivery_send(*, delivery_id, task_id: str = "") -> float | None:
    """Make the next try of a delivery if one is due. Returns the seconds to wait before calling
    again, or None when this caller has nothing more to do. Safe to call twice at once or again
    after a crash."""
    now = timezone.now()
    attempt = _claim(delivery_id, task_id, now)
    if attempt is None:
        return _unclaimed(delivery_id, now)
    delivery = attempt.delivery
    device = delivery.device
    token = None
    provider_name = settings.PUSH_BACKEND
    started = time.monotonic()
    result, error = None, None
    try:
        if device.status != Device.STATUS_ACTIVE or device.issuer_id != delivery.issuer_id:
            raise PermanentPushError(f"The device is {device.status}.", code="device_inactive")
        token = device.get_push_token()
        if not token:
            raise PermanentPushError("The device has no push token.", code="no_push_token")
        with sensitive(token):
            provider = push_provider()
            provider_name = provider.name
            result = provider.send(
                platform=device.push_platform,
                token=token,
                data=authn_request_data(acs_trans_id=delivery.acs_trans_id),
                reference=str(delivery.pk),
            )
    except PushError as exc:
        error = exc
    except Exception as exc:  # an adapter bug is a failed try, bounded like any other
        with sensitive(token):
            logger.exception("Push provider %s crashed", provider_name)
        error = TransientPushError(f"Internal error: {exc.__class__.__name__}", code="internal")
    duration_ms = int((time.monotonic() - started) * 1000)
    logger.info(
        "push %s try %d/%d via %s: %s", delivery.pk, attempt.number, delivery.max_tries, provider_name,
        "accepted" if error is None else f"{error.__class__.__name__} {error.code}",
    )
    return _record_try(delivery, attempt, provider_name=provider_name, result=result, error=error, duration_ms=duration_ms)


def _claim(delivery_id, task_id: str, now) -> PushAttempt | None:
    with transaction.atomic():
        # Due and tries left: pending, or sending with a claim that lapsed (its worker died).
        claimed = PushDelivery.objects.filter(
            Q(status=PushDelivery.PENDING) | Q(status=PushDelivery.SENDING),
            pk=delivery_id,
            next_attempt_at__lte=now,
            tries__lt=F("max_tries"),
        ).update(status=PushDelivery.SENDING, tries=F("tries") + 1, next_attempt_at=now + timedelta(seconds=_lease_seconds()))
        if not claimed:
            return None
        delivery = PushDelivery.objects.select_related("device", "issuer").get(pk=delivery_id)
        _interrupt_claimed_attempts(delivery)
        attempt = PushAttempt.objects.create(delivery=delivery, number=delivery.tries, started_at=now, task_id=task_id or "")
    attempt.delivery = delivery
    return attempt


def _interrupt_claimed_attempts(delivery: PushDelivery) -> None:
    # A try still marked claimed when the delivery is claimed again belongs to a dead worker. If
    # that worker was only slow, it overwrites this with what really happened.
    PushAttempt.objects.filter(delivery=delivery, outcome=PushAttempt.CLAIMED).update(
        outcome=PushAttempt.INTERRUPTED, error_code="interrupted"
    )


def _unclaimed(delivery_id, now) -> float | None:
    delivery = PushDelivery.objects.select_related("issuer").filter(pk=delivery_id).first()
    if delivery is None:
        return None
    if delivery.status == PushDelivery.SENDING:
        if delivery.next_attempt_at > now:
            # A try in flight elsewhere (or a task redelivered while it runs): look again when
            # its claim lapses, in case its worker is gone.
            return engine.below_visibility_timeout((delivery.next_attempt_at - now).total_seconds() + 0.5)
        _fail_interrupted(delivery, now)  # the last try's worker died: no tries left
    elif delivery.status == PushDelivery.PENDING:
        # Early (a duplicate task, or this host's clock behind the one that scheduled it).
        return engine.below_visibility_timeout((delivery.next_attempt_at - now).total_seconds() + 0.1)
    elif delivery.status not in PushDelivery.UNDELIVERABLE or delivery.undeliverable_reported_at is not None:
        return None  # sent, or finished
    _report_undeliverable(delivery.pk)
    return None


def _fail_interrupted(delivery: PushDelivery, now) -> None:
    with transaction.atomic():
        failed = PushDelivery.objects.filter(
            pk=delivery.pk, status=PushDelivery.SENDING, tries=delivery.tries, next_attempt_at__lte=now
        ).update(
            status=PushDelivery.FAILED, error_code="interrupted", error_message="The worker stopped during the last try.",
            finished_at=now, next_attempt_at=now,
        )
        if failed:
            _interrupt_claimed_attempts(delivery)
            audit_record(
                issuer=delivery.issuer, kind="push.failed", actor=ACTOR, acs_trans_id=delivery.acs_trans_id, obj=delivery,
                data={**_audit_data(delivery), "error_code": "interrupted", "tries": delivery.tries},
            )


def _record_try(
    delivery: PushDelivery, attempt: PushAttempt, *, provider_name: str, result: PushResult | None,
    error: PushError | None, duration_ms: int,
) -> float | None:
    now = timezone.now()
    delay = None
    answer = result if error is None else error
    attempt_fields = {
        "duration_ms": duration_ms,
        "status_code": answer.status_code,
        "response_excerpt": answer.excerpt[:500],
        "error_code": error.code[:32] if error else "",
        "error_class": error.__class__.__name__ if error else "",
    }
    if error is None:
        attempt_fields["outcome"] = PushAttempt.SUCCEEDED
        fields = {
            "status": PushDelivery.SENT, "provider_message_id": result.message_id[:200], "finished_at": now,
            "next_attempt_at": None, "error_code": "", "error_message": "",
        }
    else:
        permanent = isinstance(error, PermanentPushError)
        attempt_fields["outcome"] = PushAttempt.FAILED_PERMANENT if permanent else PushAttempt.FAILED_TRANSIENT
        fields = {"error_code": error.code[:32], "error_message": scrub(error.message)[:255]}
        if not permanent and delivery.tries < delivery.max_tries:
            delay = engine.backoff_seconds(tries=delivery.tries, retry_after=getattr(error, "retry_after", None))
            fields.update(status=PushDelivery.PENDING, next_attempt_at=now + timedelta(seconds=delay))
        else:
            # Due now: telling the OOB flow that this device cannot be reached.
            fields.update(status=PushDelivery.FAILED, finished_at=now, next_attempt_at=now)
    fields["provider"] = provider_name[:10]
    with transaction.atomic():
        PushAttempt.objects.filter(pk=attempt.pk).update(**attempt_fields)
        # If this try outlived its claim and another worker took over, the newer try decides.
        updated = PushDelivery.objects.filter(
            pk=delivery.pk, status=PushDelivery.SENDING, tries=delivery.tries
        ).update(**fields)
        if updated and fields["status"] != PushDelivery.PENDING:
            audit_record(
                issuer=delivery.issuer, kind=f"push.{fields['status']}", actor=ACTOR, acs_trans_id=delivery.acs_trans_id,
                obj=delivery,
                data={
                    **_audit_data(delivery), "provider": provider_name, "tries": delivery.tries,
                    "message_id": fields.get("provider_message_id", ""), "error_code": fields["error_code"],
                },
            )
    if not updated:
        return None
    if fields["status"] == PushDelivery.FAILED:
        _report_undeliverable(delivery.pk)
    return delay


def _report_undeliverable(delivery_id) -> None:
    """Tell the OOB flow, once, that this device cannot be reached (it decides about the SMS
    fallback) through the push_undeliverable signal. The report and its record commit together;
    if the report fails, beat retries."""
    with transaction.atomic():
        delivery = (
            PushDelivery.objects.select_for_update()
            .filter(pk=delivery_id, status__in=PushDelivery.UNDELIVERABLE, undeliverable_reported_at__isnull=True)
            .first()
        )
        if delivery is None:
            return
        push_undeliverable.send(
            sender=PushDelivery,
            acs_trans_id=delivery.acs_trans_id,
            device_id=delivery.device_id,
            reason="push_rate_limited" if delivery.status == PushDelivery.REFUSED else "push_failed",
        )
        delivery.undeliverable_reported_at = timezone.now()
        delivery.next_attempt_at = None
        delivery.save(update_fields=["undeliverable_reported_at", "next_attempt_at"])


# ---------------------------------------------------------------- beat


def push_deliveries_resume(*, grace_seconds: float = RESUME_GRACE_SECONDS) -> int:
    """Enqueue again the deliveries a task should have acted on by now: a retry whose task was
    lost (broker restart), a claim whose worker was killed, an undeliverable push not yet
    reported. A duplicate task is harmless: only one claim succeeds."""
    ids = push_deliveries_due_ids(overdue_seconds=grace_seconds)
    for delivery_id in ids:
        push_delivery_enqueue(delivery_id=str(delivery_id))
    return len(ids)
