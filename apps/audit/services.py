import json
import uuid

from apps.audit.models import AuditEvent
from apps.core.logging import scrub

# Keys whose values never enter an audit event, whatever the caller passes.
FORBIDDEN_KEYS = {"pan", "acctnumber", "otp", "code", "password", "secret", "api_key", "token", "webhook_secret"}


def _clean(value):
    if isinstance(value, dict):
        return {
            k: ("[REDACTED]" if str(k).lower().replace("_", "") in {f.replace("_", "") for f in FORBIDDEN_KEYS} else _clean(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def audit_record(
    *,
    issuer,
    kind: str,
    actor: str,
    acs_trans_id: uuid.UUID | str | None = None,
    obj=None,
    data: dict | None = None,
) -> AuditEvent:
    clean = _clean(json.loads(json.dumps(data or {}, default=str)))
    return AuditEvent.objects.create(
        issuer=issuer,
        kind=kind,
        actor=actor[:150],
        acs_trans_id=acs_trans_id,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        data=clean,
    )
