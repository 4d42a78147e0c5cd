import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.crypto import hash_secret, new_token, secret_matches
from apps.core.exceptions import ApplicationError, Conflict
from apps.issuers.models import GRANT_MIN_DIGITS, GRANT_PREFIX_DIGITS, ApiKey, BinGrant, Issuer, prefix_interval
from apps.issuers.signals import issuer_created

API_KEY_HASH_PURPOSE = "issuer-api-key"
# last_used_at is informational: refresh it at most this often instead of on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@transaction.atomic
def issuer_create(
    *,
    issuer_id: str,
    name: str,
    country: str = "JP",
    notification_base_url: str = "",
    deliver_otp_url: str = "",
    otp_delivery: str = "provider",
    webauthn_rp_id: str = "",
    webauthn_origins: list[str] | None = None,
    actor: str = "system",
) -> tuple[Issuer, str]:
    """Create an issuer ready to serve; returns it and its webhook secret (shown once)."""
    issuer = Issuer(
        issuer_id=issuer_id,
        name=name,
        country=country.upper(),
        notification_base_url=notification_base_url,
        deliver_otp_url=deliver_otp_url,
        webauthn_rp_id=webauthn_rp_id,
        webauthn_origins=list(webauthn_origins or []),
    )
    if otp_delivery == "issuer" and not deliver_otp_url:
        raise ValidationError({"deliver_otp_url": "Required when the issuer delivers OTPs itself."})
    webhook_secret = "whsec_" + new_token(32)
    issuer.set_webhook_secret(webhook_secret)
    issuer.full_clean()
    issuer.save()
    # Ready to serve: apps.otp makes the default OTP policy (SMS to the issuer's own country only).
    issuer_created.send(sender=Issuer, issuer=issuer, otp_delivery=otp_delivery)
    audit_record(issuer=issuer, kind="issuer.created", actor=actor, data={"issuer_id": issuer_id})
    return issuer, webhook_secret


# What may change after creation; issuer_id is part of the encryption context of the issuer's PANs.
ISSUER_UPDATABLE = ("name", "country", "notification_base_url", "deliver_otp_url", "webauthn_rp_id", "webauthn_origins")


@transaction.atomic
def issuer_update(*, issuer: Issuer, actor: str, **changes) -> Issuer:
    fields = [f for f in ISSUER_UPDATABLE if f in changes]
    before = {f: getattr(issuer, f) for f in fields}
    for field in fields:
        setattr(issuer, field, changes[field])
    if "country" in fields:
        issuer.country = issuer.country.upper()
    if fields:
        issuer.full_clean()
        issuer.save(update_fields=fields)
        audit_record(
            issuer=issuer, kind="issuer.updated", actor=actor, obj=issuer,
            data={"fields": fields, "before": before, "after": {f: getattr(issuer, f) for f in fields}},
        )
    return issuer


def issuer_rotate_webhook_secret(*, issuer: Issuer, actor: str) -> str:
    secret = "whsec_" + new_token(32)
    issuer.set_webhook_secret(secret)
    issuer.save(update_fields=["webhook_secret_key_id", "webhook_secret_blob"])
    audit_record(issuer=issuer, kind="issuer.webhook_secret_rotated", actor=actor)
    return secret


@transaction.atomic
def api_key_create(*, issuer: Issuer, name: str, created_by: str = "", prefix: str = "", secret: str = "") -> tuple[ApiKey, str]:
    """Returns the key row and the plaintext key, which is never stored and never shown again.
    `prefix` and `secret` given: that key (seed_demo's demo key, the same on every run); else random."""
    prefix = prefix or secrets.token_hex(6)
    secret = secret or new_token(32)
    plaintext = f"ik_{prefix}_{secret}"
    api_key = ApiKey.objects.create(
        issuer=issuer,
        name=name,
        prefix=prefix,
        key_hash=hash_secret(plaintext, purpose=API_KEY_HASH_PURPOSE),
        created_by=created_by,
    )
    audit_record(
        issuer=issuer, kind="api_key.created", actor=created_by or "system", data={"prefix": prefix, "name": name}
    )
    return api_key, plaintext


def api_key_rename(*, api_key: ApiKey, name: str, actor: str) -> ApiKey:
    """Only the label changes; key material never does."""
    if name != api_key.name:
        before, api_key.name = api_key.name, name
        api_key.full_clean(exclude=["issuer", "key_hash", "prefix"])
        api_key.save(update_fields=["name"])
        audit_record(
            issuer=api_key.issuer, kind="api_key.renamed", actor=actor, obj=api_key,
            data={"prefix": api_key.prefix, "before": before, "after": name},
        )
    return api_key


def api_key_revoke(*, api_key: ApiKey, actor: str) -> None:
    if ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit_record(issuer=api_key.issuer, kind="api_key.revoked", actor=actor, data={"prefix": api_key.prefix})
    api_key.refresh_from_db(fields=["revoked_at"])


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key this plaintext proves, or None. Constant-time on the secret part."""
    parts = raw_key.split("_")
    if len(parts) < 3 or parts[0] != "ik":
        return None
    prefix = parts[1]
    api_key = ApiKey.objects.select_related("issuer").filter(prefix=prefix).first()
    if api_key is None or not secret_matches(raw_key, api_key.key_hash, purpose=API_KEY_HASH_PURPOSE):
        return None
    if api_key.revoked_at is not None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


# ---------------------------------------------------------------- BIN grants (platform operator only)


def parse_bin_range(text: str) -> tuple[str, str]:
    """`START-END` (or one prefix): prefixes of equal length, 6 to 11 digits, START <= END."""
    start, dash, end = (text or "").strip().partition("-")
    start, end = start.strip(), (end.strip() if dash else start.strip())
    if not (start.isascii() and end.isascii() and start.isdigit() and end.isdigit()):
        raise ApplicationError("A BIN range is START-END, digits only.", code="invalid_bin_range", fields={"bin_range": ["Digits only."]})
    if not (GRANT_MIN_DIGITS <= len(start) <= GRANT_PREFIX_DIGITS and len(start) == len(end)):
        raise ApplicationError(
            "Invalid BIN range.", code="invalid_bin_range",
            fields={"bin_range": [f"START and END are {GRANT_MIN_DIGITS} to {GRANT_PREFIX_DIGITS} digits, of the same length."]},
        )
    if int(start) > int(end):
        raise ApplicationError("Invalid BIN range.", code="invalid_bin_range", fields={"bin_range": ["START is after END."]})
    return start, end


def _overlap_conflict(start: str, end: str) -> Conflict:
    return Conflict(
        f"{start}-{end} overlaps an existing BIN grant.", code="overlapping_bin_grant", fields={"bin_range": ["Overlaps an existing grant."]}
    )


def bin_grant_create(*, issuer: Issuer, start: str, end: str, actor: str) -> BinGrant:
    """Only the platform operator calls this (superuser admin, bootstrap_issuer, bin_grants):
    never an issuer's API key. Overlap is checked here for a clear answer and, whatever races
    past it, refused again by the database."""
    start, end = parse_bin_range(f"{start}-{end}")
    low, high = prefix_interval(start, end)
    if BinGrant.objects.filter(low__lte=high, high__gte=low).exists():
        raise _overlap_conflict(start, end)
    try:
        with transaction.atomic():
            grant = BinGrant.objects.create(issuer=issuer, start=start, end=end, created_by=actor)
    except IntegrityError:
        raise _overlap_conflict(start, end)
    audit_record(issuer=issuer, kind="bin_grant.created", actor=actor, obj=grant, data={"start": start, "end": end})
    return grant

