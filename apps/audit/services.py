import json
import uuid

from apps.audit.models import AuditEvent
from apps.core import model_sql
from apps.core.logging import scrub

# Keys whose values never enter an audit event, whatever the caller passes.
FORBIDDEN_KEYS = {"pan", "acctnumber", "otp", "code", "password", "secret", "api_key", "token", "webhook_secret"}
_FORBIDDEN_NORMALISED = {f.replace("_", "") for f in FORBIDDEN_KEYS}


def _clean(value):
    if isinstance(value, dict):
        return {k: ("[REDACTED]" if str(k).lower().replace("_", "") in _FORBIDDEN_NORMALISED else _clean(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def audit_data_clean(data: dict | None) -> dict:
    """The data as an event stores it: JSON-safe, forbidden keys redacted, strings scrubbed (for
    callers that write an event by SQL of their own)."""
    return _clean(json.loads(json.dumps(data or {}, default=str)))


def audit_event(
    *,
    issuer=None,
    issuer_id=None,
    kind: str,
    actor: str,
    acs_trans_id: uuid.UUID | str | None = None,
    obj=None,
    data: dict | None = None,
) -> AuditEvent:
    """An event, cleaned and not yet written (audit_record writes one, audit_record_many several).
    The issuer, or only its id when the caller has not loaded it (a sender that read no more than
    the delivery's row)."""
    if (issuer is None) == (issuer_id is None):
        raise TypeError("audit_event takes an issuer or an issuer_id")
    return AuditEvent(
        **({"issuer": issuer} if issuer is not None else {"issuer_id": issuer_id}),
        kind=kind,
        actor=actor[:150],
        acs_trans_id=acs_trans_id,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        data=audit_data_clean(data),
    )


def audit_record(
    *,
    issuer=None,
    issuer_id=None,
    kind: str,
    actor: str,
    acs_trans_id: uuid.UUID | str | None = None,
    obj=None,
    data: dict | None = None,
    batch: list[AuditEvent] | None = None,
) -> AuditEvent:
    """Write an event now; or, given `batch` (a list the caller writes later in the same
    transaction with audit_record_many), add it there so that several steps of one request cost
    one INSERT."""
    event = audit_event(issuer=issuer, issuer_id=issuer_id, kind=kind, actor=actor, acs_trans_id=acs_trans_id, obj=obj, data=data)
    if batch is not None:
        batch.append(event)
    else:
        # The INSERT built once (apps.core.model_sql): an event is written on most hot paths.
        model_sql.write([[event]], using=AuditEvent.objects.db, savepoint=False)
    return event


def audit_record_many(events: list[AuditEvent]) -> list[AuditEvent]:
    """Several events from audit_event in one INSERT. They keep the given order: ids and created_at
    ascend with it, as if written one after another. Only new events: the trail is append-only."""
    if any(event.pk is not None for event in events):
        raise RuntimeError("Audit events are append-only.")
    if not events:
        return []
    return AuditEvent.objects.bulk_create(events)
