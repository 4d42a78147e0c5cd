"""One engine for every outbound delivery: SMS, push, webhooks and RReq are channels on it.

The path of a delivery:

1. **Outbox.** The caller writes the delivery row (status pending, due now) in its own
   transaction. `wake()` is registered with `transaction.on_commit`: the task message it publishes
   is only a wake-up call, the row is the work.
2. **Wake-up.** `wake()` publishes the channel's task (only the id travels) with a publish that
   fails at once instead of retrying. If the broker cannot take it, the delivery is sent in this
   process, in a background thread, right after the commit: the broker being down never delays
   an OTP; a retry there is scheduled on a timer, never slept. Without a broker at all (eager tasks: development, tests) the task runs in the
   committing thread and makes the tries due now only; a retry after a backoff is the sweep's.
3. **Claim.** `deliver()` claims the next try with ONE conditional UPDATE: pending, due, no live
   lease, tries left → tries + 1 and a lease. Two workers racing for a try: one UPDATE matches.
4. **Try.** The channel's adapter prepares the try (reads what it needs, may end the delivery
   instead), an attempt row is written (claimed), the adapter makes the call and classifies the
   answer as success / transient / permanent: the one place each channel decides that.
5. **Record.** The attempt is completed; the delivery ends, or is due again after a backoff with
   jitter (a provider's Retry-After honoured), or goes straight on (SMS: the fallback provider).
6. **Sweep.** Every few seconds (beat, or `run_schedule` without a broker) `sweep()` wakes every
   pending delivery that is overdue and not leased: a lost task, a killed worker (its lease
   lapsed; the interrupted try is marked so when the next claim takes over), a broker restart;
   and whatever else a channel left overdue (`Channel.sweep_more`).

A lease lasts as long as a try can take (the channel's connect and read timeouts) plus a margin,
so a try is handed to a provider again only once its first claimant can no longer be talking to
it: exactly once per try.
"""

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core import model_sql
from apps.delivery.models import OutboundAttempt, OutboundDelivery

logger = logging.getLogger(__name__)

SUCCESS, TRANSIENT, PERMANENT = "success", "transient", "permanent"
# What follows a failed try: another try after a backoff, the next provider at once, or the end.
RETRY, NEXT, FAIL = "retry", "next", "fail"
# A wake-up that runs in process (broker down) schedules a retry itself only this soon; a later
# one is left to the sweep.
IN_PROCESS_MAX_WAIT = 30.0
# In-process deliveries running at once in one process (each holds a database connection): a
# sweep that meets a dead broker with hundreds overdue must not open hundreds of connections.
_in_process_slots = threading.BoundedSemaphore(8)


@dataclass
class Outcome:
    """What one try came to, as the channel's adapter classified it."""

    kind: str  # SUCCESS, TRANSIENT or PERMANENT
    error_code: str = ""
    error_message: str = ""  # scrubbed by the adapter
    status_code: int | None = None
    excerpt: str = ""
    retry_after: float | None = None  # the provider's Retry-After, in seconds
    # A permanent error about the message itself (an invalid number): no other provider either.
    final: bool = False
    # The channel's own attempt columns (the provider's message id, the RRes resultsStatus, ...).
    attempt_fields: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.kind == SUCCESS


@dataclass
class End:
    """An adapter's decision, before any call, that the delivery ends (a dead OTP, a wiped body)."""

    status: str
    error_code: str
    error_message: str = ""


class Channel:
    """A channel's adapter. Subclasses set the class attributes and implement prepare/send and
    the three end states; everything else (claim, lease, backoff, record, sweep) is the engine's."""

    name: str  # also the task's queue
    delivery_model: type[OutboundDelivery]
    attempt_model: type[OutboundAttempt]
    # Related rows read with the claimed delivery (select_related).
    related: tuple[str, ...] = ()
    succeeded_status = "succeeded"
    failed_status = "failed"

    def task(self):
        """The channel's Celery task (imported here: tasks modules import their services)."""
        raise NotImplementedError

    def lease_seconds(self) -> float:
        """How long a try may be in flight: by default one connect and one read timeout, plus margin."""
        return 2 * settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + 2

    def prepare(self, delivery, number: int):
        """Read what the try needs. Returns a job for send(), or End to finish the delivery."""
        raise NotImplementedError

    def attempt_fields(self, delivery, job) -> dict:
        """The channel's own columns of the attempt row, written at the claim."""
        return {}

    def send(self, delivery, job) -> Outcome:
        """Make the call and classify its answer. An exception counts as a transient failure."""
        raise NotImplementedError

    def next_step(self, delivery, job, outcome: Outcome) -> str:
        if outcome.kind == TRANSIENT and delivery.tries < delivery.max_tries:
            return RETRY
        return FAIL

    def success_fields(self, delivery, job, outcome: Outcome, now) -> dict:
        return {"status": self.succeeded_status, "finished_at": now}

    def end_fields(self, delivery, status: str, error_code: str, error_message: str, now, outcome=None) -> dict:
        """The delivery's fields when it ends unsent; `outcome` is the last try's, if one was made."""
        return {"status": status, "finished_at": now}

    def end_events(self, delivery, status: str, data: dict) -> list | None:
        """The audit events that are ALL an end writes, built (apps.audit.services.audit_event),
        not written: after a try the engine then ends the delivery and writes them in one
        statement. None (the default): the end does more, and ended() runs inside the
        transaction that ends the delivery."""
        return None

    def ended(self, delivery, status: str, data: dict) -> None:
        """Inside the transaction that ended the delivery (audit, hooks). By default it writes
        end_events()."""
        from apps.audit.services import audit_record_many

        audit_record_many(self.end_events(delivery, status, data) or [])

    def sensitive_values(self, job) -> tuple:
        """Values kept out of every log line while the try runs (an OTP, a push token)."""
        return ()

    def sweep_more(self, *, grace_seconds: float, now) -> int:
        """The channel's own overdue work besides its pending deliveries, done by sweep() (push:
        an undeliverable push not yet reported to the OOB flow). Returns how many it took on."""
        return 0

    # -------------------------------------------------------------- the engine's helpers

    def field_names(self) -> set[str]:
        return {f.name for f in self.delivery_model._meta.get_fields()}


_channels: dict[str, Channel] = {}


def register(channel: Channel) -> Channel:
    """Called from the channel app's AppConfig.ready()."""
    _channels[channel.name] = channel
    return channel


def channel(name: str) -> Channel:
    return _channels[name]


def channels() -> list[Channel]:
    return list(_channels.values())


# ---------------------------------------------------------------- backoff


def below_visibility_timeout(seconds: float) -> float:
    # Redis redelivers a task not acknowledged within the visibility timeout, countdown or not:
    # every wait stays well below it.
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    return max(0.0, min(seconds, visibility / 2))


def backoff_seconds(*, tries: int, retry_after: float | None = None) -> float:
    """Seconds before the try after the `tries`-th: exponential, half fixed and half random so
    deliveries failing together do not retry together, capped at OUTBOUND_BACKOFF_MAX_SECONDS;
    a provider's Retry-After is honoured up to that cap."""
    cap = settings.OUTBOUND_BACKOFF_MAX_SECONDS
    ceiling = min(cap, settings.OUTBOUND_BACKOFF_BASE_SECONDS * 2 ** min(max(tries, 1) - 1, 30))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return below_visibility_timeout(delay)


# ---------------------------------------------------------------- claim


def claim(ch: Channel, delivery_id, *, now=None):
    """Claim the next try: ONE conditional UPDATE (pending, due, lease free, tries left → tries + 1,
    lease taken) that also reads the claimed row and its `related` rows on PostgreSQL (`RETURNING`
    in a WITH clause, built once per channel by apps.core.model_sql's rules); elsewhere the
    UPDATE, then the row. None when the UPDATE matched nothing."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=ch.lease_seconds())
    connection = connections[ch.delivery_model.objects.db]
    if connection.vendor == "postgresql":
        return _claim_returning(ch, delivery_id, now=now, lease=lease, connection=connection)
    fields = {"tries": F("tries") + 1, "lease_expires_at": lease}
    if "updated_at" in ch.field_names():
        fields["updated_at"] = now  # update() skips auto_now
    claimed = ch.delivery_model.objects.filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now),
        pk=delivery_id,
        status=OutboundDelivery.PENDING,
        next_attempt_at__lte=now,
        tries__lt=F("max_tries"),
    ).update(**fields)
    if not claimed:
        return None
    return ch.delivery_model.objects.select_related(*ch.related).get(pk=delivery_id)


# Per channel and connection alias: the claim's statement. Compiling the UPDATE and then the
# select_related read with the ORM was a third of an SMS's CPU (docs/BENCHMARKS.md, issue 12).
_claim_sqls: dict = {}


def _claim_sql(ch: Channel, connection) -> str:
    key = (ch.name, connection.alias)
    if key not in _claim_sqls:
        quote = connection.ops.quote_name
        model = ch.delivery_model

        def col(name):
            return quote(model._meta.get_field(name).column)

        sets = [f"{col('tries')} = {col('tries')} + 1", f"{col('lease_expires_at')} = %(lease)s"]
        if "updated_at" in ch.field_names():
            sets.append(f"{col('updated_at')} = %(now)s")
        update = (
            f"UPDATE {quote(model._meta.db_table)} SET {', '.join(sets)}"
            f" WHERE {quote(model._meta.pk.column)} = %(pk)s AND {col('status')} = %(pending)s"
            f" AND {col('next_attempt_at')} <= %(now)s AND {col('tries')} < {col('max_tries')}"
            f" AND ({col('lease_expires_at')} IS NULL OR {col('lease_expires_at')} <= %(now)s) RETURNING *"
        )
        selected, joins = [model_sql.columns(model, "claimed", quote)], []
        for i, name in enumerate(ch.related):
            field = model._meta.get_field(name)  # a foreign key of the delivery (no "__" paths)
            related = field.related_model
            selected.append(model_sql.columns(related, f"r{i}", quote))
            joins.append(f" LEFT OUTER JOIN {quote(related._meta.db_table)} r{i}"
                         f" ON r{i}.{quote(field.target_field.column)} = claimed.{quote(field.column)}")
        _claim_sqls[key] = f"WITH claimed AS ({update}) SELECT {', '.join(selected)} FROM claimed{''.join(joins)}"
    return _claim_sqls[key]


def _claim_returning(ch: Channel, delivery_id, *, now, lease, connection):
    model = ch.delivery_model
    meta = model._meta
    at = meta.get_field("next_attempt_at")
    params = {
        "pk": meta.pk.get_db_prep_value(delivery_id, connection, prepared=False),
        "pending": OutboundDelivery.PENDING,
        "now": at.get_db_prep_value(now, connection), "lease": at.get_db_prep_value(lease, connection),
    }
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(ch, connection), params)
        row = cursor.fetchone()
    if row is None:
        return None
    using = connection.alias
    width = len(meta.concrete_fields)
    delivery = model_sql.load(model, row[:width], connection, using)
    for name in ch.related:
        field = meta.get_field(name)
        related = field.related_model
        part = row[width:width + len(related._meta.concrete_fields)]
        width += len(part)
        if getattr(delivery, field.attname) is not None:
            # Through the relation's descriptor, which caches it as select_related does.
            setattr(delivery, name, model_sql.load(related, part, connection, using))
    return delivery


def _interrupt_claimed_attempts(ch: Channel, delivery, now) -> None:
    # A try still marked claimed when the delivery is claimed again belongs to a claimant whose
    # lease lapsed (its worker died). If it was only slow, it overwrites this with what happened.
    ch.attempt_model.objects.filter(delivery=delivery, state=OutboundAttempt.CLAIMED).update(
        state=OutboundAttempt.INTERRUPTED, finished_at=now, error_code="interrupted",
        error_message="The worker stopped before the provider answered.",
    )


# ---------------------------------------------------------------- one try


def deliver(ch: Channel, delivery_id, *, task_id: str = "") -> float | None:
    """Make the next try of a delivery if one is due. Returns the seconds to wait before calling
    again, or None when this caller has nothing more to do. Safe to call twice at once, or again
    after a crash: only a claim sends."""
    now = timezone.now()
    delivery = claim(ch, delivery_id, now=now)
    if delivery is None:
        return _unclaimed(ch, delivery_id, now)
    number = delivery.tries
    if number > 1:
        _interrupt_claimed_attempts(ch, delivery, now)
    job = ch.prepare(delivery, number)
    if isinstance(job, End):
        end(ch, delivery, job.status, error_code=job.error_code, error_message=job.error_message, number=number)
        return None
    attempt = ch.attempt_model(
        delivery=delivery, number=number, started_at=now, task_id=(task_id or "")[:255], **ch.attempt_fields(delivery, job)
    )
    model_sql.write([[attempt]], using=ch.attempt_model.objects.db)
    from apps.core.logging import sensitive

    with sensitive(*ch.sensitive_values(job)):
        started = time.monotonic()
        try:
            outcome = ch.send(delivery, job)
        except Exception as exc:  # an adapter bug is a failed try, bounded like any other
            logger.exception("%s adapter crashed", ch.name)
            outcome = Outcome(TRANSIENT, error_code="internal", error_message=f"Internal error: {exc.__class__.__name__}")
        duration_ms = int((time.monotonic() - started) * 1000)
        logger.info(
            "%s %s try %d/%d: %s", ch.name, delivery.pk, number, delivery.max_tries,
            "accepted" if outcome.ok else f"{outcome.kind} {outcome.error_code}",
        )
        return record(ch, delivery, job, attempt, outcome, duration_ms=duration_ms)


def record(ch: Channel, delivery, job, attempt, outcome: Outcome, *, duration_ms: int) -> float | None:
    """Complete the attempt and move the delivery on: ended, due again after a backoff, or due at
    once (the next provider). A try that outlived its lease and was taken over does not decide
    the delivery's fate, except a success: the provider has the message."""
    now = timezone.now()
    state = {
        SUCCESS: OutboundAttempt.SUCCEEDED, TRANSIENT: OutboundAttempt.FAILED_TRANSIENT,
        PERMANENT: OutboundAttempt.FAILED_PERMANENT,
    }[outcome.kind]
    attempt_update = {
        "state": state, "finished_at": now, "duration_ms": duration_ms, "status_code": outcome.status_code,
        "error_code": outcome.error_code[:32], "error_message": outcome.error_message[:255],
        "response_excerpt": outcome.excerpt[:500], **outcome.attempt_fields,
    }
    touch = {"updated_at": now} if "updated_at" in ch.field_names() else {}
    completed = (ch.attempt_model, attempt_update, {"pk": attempt.pk})

    def pending(fields, **where):
        # Statements built once (apps.core.model_sql): the ORM's compilation of these UPDATEs
        # was most of the record's CPU.
        return ch.delivery_model, {**fields, **touch}, {"pk": delivery.pk, "status": OutboundDelivery.PENDING, **where}

    if outcome.ok:
        fields = {**ch.success_fields(delivery, job, outcome, now), "next_attempt_at": None, "lease_expires_at": None}
        where = {}
    else:
        step = ch.next_step(delivery, job, outcome)
        if step != FAIL:
            wait = 0.0 if step == NEXT else backoff_seconds(tries=delivery.tries, retry_after=outcome.retry_after)
            fields = {"next_attempt_at": now + timedelta(seconds=wait), "lease_expires_at": None}
            return wait if model_sql.update_then_insert([completed, pending(fields, tries=delivery.tries)]) else None
        fields = {**ch.end_fields(delivery, ch.failed_status, outcome.error_code, outcome.error_message, now, outcome),
                  "next_attempt_at": None, "lease_expires_at": None}
        where = {"tries": delivery.tries}
    # The end. The delivery as it will be (what the events describe); unused if the UPDATE
    # matches nothing (the try was taken over, or the delivery ended meanwhile).
    _apply(delivery, fields)
    data = _end_data(delivery, outcome)
    events = ch.end_events(delivery, fields["status"], data)
    if events is not None:
        model_sql.update_then_insert([completed, pending(fields, **where)], events)
        return None
    with transaction.atomic():
        if model_sql.update_then_insert([completed, pending(fields, **where)]):
            ch.ended(delivery, fields["status"], data)
    return None


def end(ch: Channel, delivery, status: str, *, error_code: str, error_message: str = "", number: int | None = None) -> bool:
    """End a pending delivery without a (further) try. Returns whether this call ended it."""
    now = timezone.now()
    fields = {**ch.end_fields(delivery, status, error_code, error_message, now), "next_attempt_at": None,
              "lease_expires_at": None}
    if "updated_at" in ch.field_names():
        fields["updated_at"] = now
    with transaction.atomic():
        qs = ch.delivery_model.objects.filter(pk=delivery.pk, status=OutboundDelivery.PENDING)
        if number is not None:
            qs = qs.filter(tries=number)
        if not qs.update(**fields):
            return False
        _apply(delivery, fields)
        ch.ended(delivery, status, {"tries": delivery.tries, "error_code": error_code, "error": error_message,
                                    "status_code": None})
    return True


def _end_data(delivery, outcome: Outcome) -> dict:
    """What `Channel.ended` hears about the end: the tries and the last try's answer."""
    return {"tries": delivery.tries, "error_code": outcome.error_code, "error": outcome.error_message,
            "status_code": outcome.status_code, "outcome": outcome}


def _apply(delivery, fields: dict) -> None:
    for name, value in fields.items():
        if not hasattr(value, "resolve_expression"):
            setattr(delivery, name, value)


def _unclaimed(ch: Channel, delivery_id, now) -> float | None:
    """Why the claim matched nothing, and when to look again."""
    delivery = ch.delivery_model.objects.select_related(*ch.related).filter(pk=delivery_id).first()
    if delivery is None or delivery.status != OutboundDelivery.PENDING:
        return None  # ended already (e.g. a redelivered task after success)
    if delivery.lease_expires_at and delivery.lease_expires_at > now:
        # A try in flight elsewhere (or this very task redelivered while it runs): look again
        # when its lease lapses, in case its worker is gone.
        return below_visibility_timeout((delivery.lease_expires_at - now).total_seconds() + 0.1)
    if delivery.tries >= delivery.max_tries:
        # The last try's claimant died: no try is left to take over with.
        _interrupt_claimed_attempts(ch, delivery, now)
        end(ch, delivery, ch.failed_status, error_code="interrupted",
            error_message="The worker stopped during the last try.", number=delivery.tries)
        return None
    if delivery.next_attempt_at and delivery.next_attempt_at > now:
        # Early: a duplicate task, or this host's clock behind the one that scheduled it.
        return below_visibility_timeout((delivery.next_attempt_at - now).total_seconds() + 0.05)
    return None  # another claim won the race just now


# ---------------------------------------------------------------- wake-ups


def wake(ch: Channel, delivery_id) -> None:
    """Publish the channel's task for this delivery, failing fast; if the broker cannot take it,
    send in this process instead (a background thread). Call it from transaction.on_commit."""
    try:
        # No publish retries: a broker that refuses now is down for longer than an OTP can wait.
        # (Without a broker, in development, the task runs here, eagerly.)
        # The id only (a UUID as text): never the message, which may hold an OTP.
        task_id = delivery_id if isinstance(delivery_id, int) else str(delivery_id)
        ch.task().apply_async(args=[task_id], retry=True, retry_policy={"max_retries": 0})
        return
    except Exception as exc:
        logger.warning("%s %s: the broker refused the wake-up (%s); sending in process", ch.name, delivery_id,
                       exc.__class__.__name__)
    threading.Thread(target=deliver_in_process, args=(ch.name, str(delivery_id)), daemon=True,
                     name=f"delivery-{ch.name}").start()


def deliver_in_process(channel_name: str, delivery_id: str) -> None:
    """Make the tries of a delivery that are due now, here. A retry due within IN_PROCESS_MAX_WAIT
    is scheduled to come back here; a later one is left to the sweep. Used when the broker is
    down; safe next to any worker (the claim)."""
    ch = channel(channel_name)
    wait = None
    with _in_process_slots:
        try:
            while (wait := deliver(ch, delivery_id, task_id="in-process")) is not None and wait <= 0:
                pass  # straight on (the next provider)
        except Exception:
            wait = None
            logger.exception("%s %s: in-process delivery failed; the sweep will resume it", channel_name, delivery_id)
        finally:
            connections.close_all()  # this thread's own connections
    if wait is not None and wait <= IN_PROCESS_MAX_WAIT:
        # Scheduled, not slept: a backoff used to hold one of the few slots (and a connection)
        # while other deliveries, OTPs among them, waited for it.
        _later(wait, deliver_in_process, channel_name, delivery_id)


def _later(seconds: float, function, *args) -> None:
    """Call `function(*args)` in a daemon thread after `seconds`, holding nothing meanwhile."""
    timer = threading.Timer(seconds, function, args=args)
    timer.daemon = True
    timer.name = f"delivery-later-{args[0] if args else ''}"
    timer.start()


def run_task(task, ch: Channel, delivery_id) -> None:
    """The body of every channel's send task: tries until the delivery ends or must wait, then
    comes back through a Celery retry. Run eagerly (no broker), it stops at the first wait: the
    delivery stays pending, due after its backoff, and the sweep (run_schedule) wakes it then."""
    while (wait := deliver(ch, delivery_id, task_id=task.request.id or "")) is not None:
        if wait <= 0:
            continue  # straight on (the next provider)
        if task.request.is_eager:
            # An eager task runs inside the request (or test) that committed the delivery: sleeping
            # through the backoffs here held it for the sum of them (a minute for an RReq to an
            # unreachable dsURL). The row already says when the next try is due.
            return
        raise task.retry(countdown=wait)


# The options of every channel's send task (`@shared_task(name="sms.send", **SEND_TASK_OPTIONS)`).
# acks_late + reject_on_worker_lost: a worker killed mid-try leaves the message to be redelivered,
# and the claim makes that harmless. Tries are bounded by the delivery's max_tries, not by Celery.
# The database gone away: keep the delivery and come back later.
SEND_TASK_OPTIONS = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": None,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "ignore_result": True,
}


# ---------------------------------------------------------------- the sweep


def overdue_ids(ch: Channel, *, grace_seconds: float, now=None, limit: int = 500) -> list:
    """Pending deliveries due more than `grace_seconds` ago whose lease (if any) lapsed: their
    wake-up was lost, or their worker died."""
    now = now or timezone.now()
    return list(
        ch.delivery_model.objects.filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now),
            status=OutboundDelivery.PENDING,
            next_attempt_at__lte=now - timedelta(seconds=grace_seconds),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def sweep(*, grace_seconds: float | None = None, names: tuple[str, ...] | None = None) -> dict[str, int]:
    """Wake every overdue delivery of every channel (or of `names`). A wake-up that meets a live
    task is harmless: only one claim succeeds."""
    grace = settings.DELIVERY_SWEEP_GRACE_SECONDS if grace_seconds is None else grace_seconds
    woken = {}
    for ch in channels():
        if names is not None and ch.name not in names:
            continue
        now = timezone.now()
        ids = overdue_ids(ch, grace_seconds=grace, now=now)
        for delivery_id in ids:
            wake(ch, delivery_id)
        woken[ch.name] = len(ids) + ch.sweep_more(grace_seconds=grace, now=now)
    return woken
