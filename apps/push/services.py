"""Push deliveries (SPEC §3.4): a channel on the delivery engine (apps.delivery.engine), like
SMS, webhooks and RReq. The delivery row is written in the caller's transaction (the outbox), the
`push.send` task (queue `push`) is woken after commit with the id only, the engine claims each
try with its lease and backoff, and the engine's sweep resumes a lost task or a killed worker.
This module is the adapter: which device and token, the provider call, and what an answer means.

- Only the delivery id travels in a task message; the push token is read from the Device, in
  clear only in the worker's memory, and declared `sensitive` while the try runs.
- Push bombing: at most PUSH_MAX_PER_DEVICE_PER_MINUTE deliveries per device in any 60 s,
  counted under a lock on the device row; a delivery over the limit is recorded as refused.
- A push that cannot be delivered (refused, permanent error, tries exhausted) is reported to the
  OOB flow exactly once (push_undeliverable), recorded by undeliverable_reported_at in the same
  transaction as the report; see _report_undeliverable.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.logging import scrub
from apps.delivery import engine
from apps.devices.models import Device
from apps.push.models import PushAttempt, PushDelivery
from apps.push.providers import PermanentPushError, PushError, PushProvider, push_provider
from apps.push.signals import push_undeliverable

logger = logging.getLogger(__name__)

ACTOR = "system:push"
MESSAGE_TYPE = "3ds_authn_request"
RATE_WINDOW = timedelta(seconds=60)


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
            next_attempt_at=None if refused else now,
        )
        audit_record(
            issuer=device.issuer,
            kind="push.refused" if refused else "push.created",
            actor=ACTOR,
            acs_trans_id=acs_trans_id,
            obj=delivery,
            data={**_audit_data(delivery), **({"reason": "rate_limited", "recent": recent, "limit": limit} if refused else {})},
        )
    delivery_id = delivery.pk
    if refused:
        # Reported after commit, not in this transaction: the caller is the OOB flow starting the
        # challenge under its row lock, with more pushes (other devices) still to create; a report
        # now would find none of them and fall back to SMS at once. If this process dies first,
        # or the receiver raises, the sweep's safety net reports it (PushChannel.sweep_more).
        transaction.on_commit(lambda: _report_refused(delivery_id))
    else:
        transaction.on_commit(lambda: engine.wake(PUSH_CHANNEL, delivery_id))
    return delivery


def _audit_data(delivery: PushDelivery) -> dict:
    return {"delivery": str(delivery.pk), "device": str(delivery.device_id), "platform": delivery.platform}


# ---------------------------------------------------------------- the push channel


@dataclass(frozen=True)
class _Job:
    """One claimed try: the provider and the device's token (in clear, in memory only)."""

    provider: PushProvider
    token: str = field(repr=False)  # never in a repr (a traceback, a log line)


class PushChannel(engine.Channel):
    """Push on the delivery engine. FCM's answers are classified in apps.push.providers
    (TransientPushError: 5xx, 429, timeouts, network; PermanentPushError: a dead or wrong token,
    an invalid request, refused credentials); this adapter maps them to the engine's kinds."""

    name = "push"
    delivery_model = PushDelivery
    attempt_model = PushAttempt
    related = ("device", "issuer")
    succeeded_status = PushDelivery.SENT
    failed_status = PushDelivery.FAILED

    def task(self):
        from apps.push.tasks import push_send

        return push_send

    def lease_seconds(self) -> float:
        """Up to three requests (access token, send, send again after a 401), each with a connect
        and a read timeout, plus margin. Past that, whoever claimed the try is gone."""
        return 6 * settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + 5

    def prepare(self, delivery: PushDelivery, number: int):
        device = delivery.device
        if device.status != Device.STATUS_ACTIVE or device.issuer_id != delivery.issuer_id:
            return engine.End(PushDelivery.FAILED, "device_inactive", f"The device is {device.status}.")
        token = device.get_push_token()
        if not token:
            return engine.End(PushDelivery.FAILED, "no_push_token", "The device has no push token.")
        try:
            provider = push_provider()
        except PushError as error:  # not configured: no try can succeed
            return engine.End(PushDelivery.FAILED, error.code, scrub(error.message))
        return _Job(provider=provider, token=token)

    def attempt_fields(self, delivery, job: _Job) -> dict:
        return {"provider": job.provider.name[:10]}

    def sensitive_values(self, job: _Job) -> tuple:
        return (job.token,)

    def send(self, delivery: PushDelivery, job: _Job) -> engine.Outcome:
        provider_field = {"provider": job.provider.name[:10]}
        try:
            result = job.provider.send(
                platform=delivery.device.push_platform,
                token=job.token,
                data=authn_request_data(acs_trans_id=delivery.acs_trans_id),
                reference=str(delivery.pk),
            )
        except PushError as error:
            permanent = isinstance(error, PermanentPushError)
            return engine.Outcome(
                engine.PERMANENT if permanent else engine.TRANSIENT, error_code=error.code,
                error_message=scrub(error.message), status_code=error.status_code, excerpt=error.excerpt,
                retry_after=getattr(error, "retry_after", None), attempt_fields=provider_field,
            )
        return engine.Outcome(
            engine.SUCCESS, status_code=result.status_code, excerpt=result.excerpt,
            attempt_fields={**provider_field, "provider_message_id": result.message_id[:200]},
        )

    def success_fields(self, delivery, job: _Job, outcome: engine.Outcome, now) -> dict:
        return {"status": PushDelivery.SENT, "finished_at": now, "provider": job.provider.name[:10],
                "provider_message_id": outcome.attempt_fields["provider_message_id"], "error_code": "",
                "error_message": ""}

    def end_fields(self, delivery, status: str, error_code: str, error_message: str, now, outcome=None) -> dict:
        fields = {"status": status, "finished_at": now, "error_code": error_code[:32],
                  "error_message": error_message[:255]}
        if outcome is not None:
            fields["provider"] = outcome.attempt_fields.get("provider", "")
        return fields

    def ended(self, delivery: PushDelivery, status: str, data: dict) -> None:
        audit_record(
            issuer=delivery.issuer, kind=f"push.{status}", actor=ACTOR, acs_trans_id=delivery.acs_trans_id,
            obj=delivery,
            data={**_audit_data(delivery), "provider": delivery.provider, "tries": data["tries"],
                  "message_id": delivery.provider_message_id, "error_code": delivery.error_code},
        )
        if status in PushDelivery.UNDELIVERABLE:
            # In the transaction that ends the delivery: the report commits with the end or not
            # at all. If a receiver raises, the end rolls back, the delivery stays pending with
            # its lease, and the sweep hands it to a worker again once the lease lapses.
            _report_undeliverable(delivery)

    def sweep_more(self, *, grace_seconds: float, now) -> int:
        """The safety net for undeliverable pushes never reported: a refused push whose process
        died before its on-commit report, or whose receiver raised then (failures are reported
        in the transaction that ends them, so they never wait here)."""
        ids = list(
            PushDelivery.objects.filter(
                status__in=PushDelivery.UNDELIVERABLE, undeliverable_reported_at__isnull=True,
                finished_at__lte=now - timedelta(seconds=grace_seconds),
            ).order_by("finished_at").values_list("pk", flat=True)[:100]
        )
        reported = 0
        for delivery_id in ids:
            reported += _report_refused(delivery_id)
        return reported


PUSH_CHANNEL = PushChannel()


def push_delivery_send(*, delivery_id, task_id: str = "") -> float | None:
    """Make the next try of a delivery (apps.delivery.engine.deliver). Returns the seconds to wait
    before calling again, or None when nothing is left to do."""
    return engine.deliver(PUSH_CHANNEL, delivery_id, task_id=task_id)


# ---------------------------------------------------------------- telling the OOB flow


def _report_undeliverable(delivery: PushDelivery) -> bool:
    """Tell the OOB flow, once, that this device cannot be reached (it decides about the SMS
    fallback), through the push_undeliverable signal. The conditional UPDATE of
    undeliverable_reported_at and the report share the caller's transaction: whoever matches the
    UPDATE reports, and a receiver that raises undoes the record too, so it is tried again."""
    with transaction.atomic():
        marked = PushDelivery.objects.filter(
            pk=delivery.pk, status__in=PushDelivery.UNDELIVERABLE, undeliverable_reported_at__isnull=True
        ).update(undeliverable_reported_at=timezone.now())
        if not marked:
            return False
        push_undeliverable.send(
            sender=PushDelivery,
            acs_trans_id=delivery.acs_trans_id,
            device_id=delivery.device_id,
            reason="push_rate_limited" if delivery.status == PushDelivery.REFUSED else "push_failed",
        )
    return True


def _report_refused(delivery_id) -> int:
    """Report an undeliverable push in a transaction of its own (after the creating transaction
    committed, or from the sweep). Never raises: what fails here the sweep tries again."""
    try:
        delivery = PushDelivery.objects.filter(pk=delivery_id).first()
        return int(delivery is not None and _report_undeliverable(delivery))
    except Exception:
        logger.exception("push %s: reporting it undeliverable failed; the sweep will try again", delivery_id)
        return 0
