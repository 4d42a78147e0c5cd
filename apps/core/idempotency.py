"""Idempotency-Key for POSTs of the issuer API (SPEC §4).

A key is scoped by caller (issuer), method and path: the same key sent to another path is another
request and runs for real. Within one path, the same key with another body is a 409.

The record is inserted when the request starts, inside the request's transaction. A second
request with the same key blocks on the unique index until the first commits (then it replays)
or rolls back (then it runs). Only successful responses are kept: a failed request writes
nothing, so running it again is harmless.
"""

import hashlib

from django.db import IntegrityError, transaction

from apps.core.exceptions import Conflict, ApplicationError
from apps.core.models import IdempotencyRecord

HEADER = "HTTP_IDEMPOTENCY_KEY"
MAX_KEY_LENGTH = 255


class Replay(Exception):
    def __init__(self, record: IdempotencyRecord):
        self.record = record


def request_target(method: str, path: str) -> str:
    """What a key is scoped to besides the caller: a fixed-length hash, so any path fits."""
    return hashlib.sha256(method.encode() + b"\0" + path.encode("utf-8", "surrogatepass")).hexdigest()


def _request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\0" + path.encode("utf-8", "surrogatepass") + b"\0" + body).hexdigest()


def idempotency_begin(*, scope: str, key: str, method: str, path: str, body: bytes) -> IdempotencyRecord:
    """Claim the key or raise Replay / Conflict. Must run inside a transaction."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApplicationError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
            code="invalid_idempotency_key",
            fields={"Idempotency-Key": ["Invalid value."]},
        )
    request_hash = _request_hash(method, path, body)
    target = request_target(method, path)
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                scope=scope, key=key, method=method[:8], path=path[:512], target=target, request_hash=request_hash
            )
    except IntegrityError:
        existing = IdempotencyRecord.objects.get(scope=scope, key=key, target=target)
    if existing.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was used with another request.", code="idempotency_key_reused"
        )
    if existing.status_code is None:
        raise Conflict("A request with this Idempotency-Key is in progress.", code="idempotency_in_progress")
    raise Replay(existing)


def idempotency_finish(record: IdempotencyRecord, *, status_code: int, body) -> None:
    record.status_code = status_code
    record.response_body = body
    record.save(update_fields=["status_code", "response_body"])
