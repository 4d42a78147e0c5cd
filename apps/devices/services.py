"""Device enrollment and WebAuthn registration (SPEC §5.1 device-enrollments, §5.3 registrations).

1. The issuer backend asks for an enrollment token for a cardholder (10 minutes, single use).
2. The app trades the token for WebAuthn creation options; the challenge is kept on the enrollment.
3. The app posts the attestation; once verified, the enrollment is consumed with a conditional
   UPDATE (two racing registrations make one device) and the device gets its bearer token.
"""

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

import webauthn
from django.db import IntegrityError, transaction
from django.utils import timezone
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from apps.audit.services import audit_record
from apps.core.crypto import hash_secret, new_token
from apps.core.exceptions import ApplicationError, Conflict
from apps.devices.models import Device, DeviceEnrollment, WebAuthnUserHandle
from apps.devices.selectors import DEVICE_TOKEN_PURPOSE, ENROLLMENT_TOKEN_PURPOSE, device_enrollment_find

ENROLLMENT_LIFETIME = timedelta(minutes=10)
REGISTRATION_TIMEOUT_MS = 5 * 60 * 1000
# "none" for privacy; "packed" (self or full attestation) is what native authenticators may still send.
ACCEPTED_ATTESTATION_FORMATS = {AttestationFormat.NONE.value, AttestationFormat.PACKED.value}


def _invalid_enrollment_token() -> ApplicationError:
    return ApplicationError(
        "The enrollment token is unknown, expired or already used; ask the issuer for a new one.",
        code="invalid_enrollment_token",
        fields={"enrollment_token": ["Invalid, expired or already used."]},
    )


def _webauthn_settings(issuer) -> tuple[str, list[str]]:
    if not issuer.webauthn_rp_id or not issuer.webauthn_origins:
        raise Conflict(
            "The issuer has no WebAuthn relying party id or origins configured; devices cannot be registered.",
            code="webauthn_not_configured",
        )
    return issuer.webauthn_rp_id, list(issuer.webauthn_origins)


def _usable_enrollment(token: str) -> DeviceEnrollment:
    enrollment = device_enrollment_find(token=token)
    if enrollment is None or not enrollment.is_usable:
        raise _invalid_enrollment_token()
    return enrollment


# ---------------------------------------------------------------- issuer API


def device_enrollment_create(*, cardholder, actor: str) -> tuple[DeviceEnrollment, str]:
    """Returns the enrollment and its token; the token exists in clear only in this return value."""
    token = new_token(32)
    enrollment = DeviceEnrollment.objects.create(
        issuer=cardholder.issuer,
        cardholder=cardholder,
        token_hash=hash_secret(token, purpose=ENROLLMENT_TOKEN_PURPOSE),
        expires_at=timezone.now() + ENROLLMENT_LIFETIME,
        created_by=actor[:150],
    )
    audit_record(
        issuer=cardholder.issuer,
        kind="device.enrollment_created",
        actor=actor,
        obj=enrollment,
        data={"cardholder": str(cardholder.pk), "expires_at": enrollment.expires_at.isoformat()},
    )
    return enrollment, token


# ---------------------------------------------------------------- SDK API


def webauthn_user_handle(*, cardholder) -> bytes:
    existing = WebAuthnUserHandle.objects.filter(cardholder=cardholder).first()
    if existing is not None:
        return bytes(existing.handle)
    try:
        with transaction.atomic():
            return bytes(WebAuthnUserHandle.objects.create(cardholder=cardholder, handle=secrets.token_bytes(32)).handle)
    except IntegrityError:  # created meanwhile by a parallel request
        return bytes(WebAuthnUserHandle.objects.get(cardholder=cardholder).handle)


def registration_options_create(*, enrollment_token: str) -> dict:
    """WebAuthn PublicKeyCredentialCreationOptions (JSON-ready) for the enrollment's cardholder.

    Each call issues a new challenge and forgets the previous one."""
    enrollment = _usable_enrollment(enrollment_token)
    issuer, cardholder = enrollment.issuer, enrollment.cardholder
    rp_id, _ = _webauthn_settings(issuer)
    user_name = cardholder.name or "Cardholder"
    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name=issuer.name,
        user_id=webauthn_user_handle(cardholder=cardholder),
        user_name=user_name,
        user_display_name=user_name,
        timeout=REGISTRATION_TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.PLATFORM,
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=bytes(cid))
            for cid in Device.objects.filter(cardholder=cardholder, status=Device.STATUS_ACTIVE).values_list(
                "credential_id", flat=True
            )
        ],
    )
    updated = DeviceEnrollment.objects.filter(pk=enrollment.pk, used_at__isnull=True).update(
        challenge=options.challenge, challenge_issued_at=timezone.now()
    )
    if not updated:
        raise _invalid_enrollment_token()
    return json.loads(webauthn.options_to_json(options))


@dataclass(frozen=True)
class Registration:
    device: Device
    device_token: str  # in clear only here, for the one response that hands it to the app


def device_register(
    *, enrollment_token: str, credential: dict, push_platform: str, push_token: str, device_name: str
) -> Registration:
    enrollment = _usable_enrollment(enrollment_token)
    issuer, cardholder = enrollment.issuer, enrollment.cardholder
    rp_id, origins = _webauthn_settings(issuer)
    if enrollment.challenge is None:
        raise Conflict(
            "Request registration options first: no challenge was issued for this enrollment.",
            code="registration_options_required",
        )
    challenge_deadline = enrollment.challenge_issued_at + timedelta(milliseconds=REGISTRATION_TIMEOUT_MS)
    if timezone.now() > challenge_deadline:
        raise Conflict("The registration challenge expired; request new options.", code="challenge_expired")

    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=bytes(enrollment.challenge),
            expected_rp_id=rp_id,
            expected_origin=origins,
            require_user_presence=True,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise ApplicationError(
            f"The WebAuthn credential could not be verified: {exc}",
            code="invalid_credential",
            fields={"credential": [str(exc) or "Verification failed."]},
        )
    fmt = str(getattr(verified.fmt, "value", verified.fmt))  # py_webauthn passes unknown formats as str
    if fmt not in ACCEPTED_ATTESTATION_FORMATS:
        raise ApplicationError(
            f"Attestation format {fmt!r} is not accepted; use 'none' or 'packed'.",
            code="unsupported_attestation_format",
            fields={"credential": ["Unsupported attestation format."]},
        )

    now = timezone.now()
    # The claim: of two registrations racing with one token, the second finds the row used.
    claimed = DeviceEnrollment.objects.filter(pk=enrollment.pk, used_at__isnull=True, expires_at__gt=now).update(
        used_at=now, challenge=None
    )
    if not claimed:
        raise _invalid_enrollment_token()

    device_token = new_token(32)
    device = Device(
        issuer=issuer,
        cardholder=cardholder,
        enrollment=enrollment,
        name=device_name,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        attestation_format=fmt,
        push_platform=push_platform,
        token_hash=hash_secret(device_token, purpose=DEVICE_TOKEN_PURPOSE),
    )
    device.set_push_token(push_token)
    try:
        with transaction.atomic():
            device.save(force_insert=True)
    except IntegrityError:
        raise Conflict("This credential is already registered.", code="credential_already_registered")
    audit_record(
        issuer=issuer,
        kind="device.registered",
        actor=f"device:{device.pk}",
        obj=device,
        data={
            "cardholder": str(cardholder.pk),
            "enrollment": str(enrollment.pk),
            "aaguid": device.aaguid,
            "attestation_format": device.attestation_format,
            "push_platform": push_platform,
        },
    )
    return Registration(device=device, device_token=device_token)


def device_revoke(*, device: Device, actor: str) -> bool:
    """Revoke; True if this call revoked it, False if it already was (idempotent)."""
    now = timezone.now()
    # A blocked (possibly cloned) device can be revoked too: that is how staff retire it.
    revoked = Device.objects.filter(pk=device.pk).exclude(status=Device.STATUS_REVOKED).update(
        status=Device.STATUS_REVOKED, revoked_at=now
    )
    if revoked:
        device.status, device.revoked_at = Device.STATUS_REVOKED, now
        audit_record(issuer=device.issuer, kind="device.revoked", actor=actor, obj=device, data={"cardholder": str(device.cardholder_id)})
    return bool(revoked)


def device_touch(*, device: Device) -> None:
    """Record use, at most once a minute per device (no write on every call)."""
    now = timezone.now()
    Device.objects.filter(pk=device.pk).exclude(last_used_at__gt=now - timedelta(minutes=1)).update(last_used_at=now)


def device_rename(*, device: Device, name: str, actor: str) -> Device:
    if name != device.name:
        before, device.name = device.name, name
        device.save(update_fields=["name"])
        audit_record(issuer=device.issuer, kind="device.renamed", actor=actor, obj=device,
                     data={"cardholder": str(device.cardholder_id), "before": before, "after": name})
    return device


def device_delete(*, device: Device, actor: str) -> None:
    """Removes the device: it can no longer sign in or approve anything."""
    issuer, data = device.issuer, {"device": str(device.pk), "cardholder": str(device.cardholder_id), "name": device.name}
    device.delete()
    audit_record(issuer=issuer, kind="device.deleted", actor=actor, data=data)
