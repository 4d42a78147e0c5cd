"""The issuer app's answers to an out-of-band challenge (SPEC §3.4, §5.3): proceed, cancel, the
WebAuthn assertion that decides it, and a push that could not be delivered. They live here, next
to the challenge they decide, so that apps.oob (the request, its devices and its push) never
imports apps.threeds: threeds → oob → push → devices.

Locks are always taken in one order — the challenge row (`challenge.challenge_lock`), then the
request, then the device — so the app, the browser page, a push failure and the timeout sweep
can race without deadlocks, and a request is decided once.

A refused assertion is counted and committed before the error goes back to the app: the counter
that leads to the fallback must survive the error response.
"""

import json
import secrets
import uuid
from dataclasses import dataclass

import webauthn
from django.db import transaction
from django.utils import timezone
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

from apps.audit.services import audit_record
from apps.core.exceptions import ApplicationError, Conflict, NotFound
from apps.devices.models import Device
from apps.oob.models import AuthnRequest
from apps.push.models import PushDelivery
from apps.threeds import challenge as flow
from apps.threeds.models import Challenge

# Bad assertions tolerated on one request before the challenge falls back to SMS (or fails).
MAX_ASSERTION_FAILURES = 3
ASSERTION_TIMEOUT_MS = 120 * 1000


class OobRefused(ApplicationError):
    """An error answer that must not undo what was decided before it (a failure count, a
    fallback): the API answers it without rolling the request's transaction back."""

    def __init__(self, message: str, *, code: str, status_code: int = 400, fields: dict | None = None):
        super().__init__(message, code=code, status_code=status_code, fields=fields)


# ---------------------------------------------------------------- from apps.push


def oob_push_undeliverable(*, acs_trans_id, device_id, reason: str) -> None:
    """apps.push's push_undeliverable signal (connected in ThreedsConfig.ready): a push failed for
    good. Once no push of the request can still arrive, the cardholder will not hear of it: fall
    back now rather than at the OOB timeout."""
    with transaction.atomic():
        challenge = flow.challenge_lock(acs_trans_id)
        request = AuthnRequest.objects.select_for_update().filter(challenge=challenge).first()
        if challenge is None or request is None or not request.is_open or challenge.is_final:
            return
        if request.state == AuthnRequest.PROCEEDED:
            return  # the app found the request anyway
        still_coming = PushDelivery.objects.filter(acs_trans_id=acs_trans_id).exclude(status__in=PushDelivery.UNDELIVERABLE).exists()
        if still_coming:
            return
        request.state, request.decided_at = AuthnRequest.UNDELIVERABLE, timezone.now()
        request.save(update_fields=["state", "decided_at"])
        flow.challenge_fall_back_locked(challenge, reason=reason, actor="acs")


# ---------------------------------------------------------------- SDK API (apps/threeds/oob_apis.py)


def _not_found() -> NotFound:
    return NotFound("No authentication request with this acsTransId for this device.", code="authn_request_not_found")


def _request_for(device: Device, acs_trans_id) -> AuthnRequest:
    """The device's request, unlocked; another device's or issuer's is simply not found."""
    try:
        acs_trans_id = uuid.UUID(str(acs_trans_id))
    except ValueError:
        raise _not_found() from None
    request = AuthnRequest.objects.filter(challenge_id=acs_trans_id, devices=device).first()
    if request is None:
        raise _not_found()
    return request


def _already_decided(request: AuthnRequest) -> Conflict:
    return Conflict(f"This authentication request is already {request.state}.", code="authn_request_decided")


@dataclass
class _Locked:
    challenge: Challenge
    request: AuthnRequest


def _lock(device: Device, acs_trans_id) -> _Locked:
    """Challenge, then request, under row locks; the request must still be open and in time. An
    expired one is fallen back here already (the sweep would do it a moment later)."""
    request = _request_for(device, acs_trans_id)
    challenge = flow.challenge_lock(request.challenge_id)
    request = AuthnRequest.objects.select_for_update().get(pk=request.pk)
    if not request.is_open or challenge.is_final:
        raise _already_decided(request)
    return _Locked(challenge, request)


def _expired(locked: _Locked) -> bool:
    return timezone.now() >= locked.request.expires_at


def _time_out_locked(locked: _Locked) -> None:
    flow.challenge_oob_time_out_locked(locked.challenge, request=locked.request)


def authn_request_proceed(*, device: Device, acs_trans_id) -> dict:
    """The cardholder chose to confirm: WebAuthn request options for this device's credential,
    the challenge = acsTransID (16 bytes) || a fresh nonce (16 bytes). A second proceed (the app
    restarted) issues a new nonce; the previous options stop working."""
    expired = False
    with transaction.atomic():
        locked = _lock(device, acs_trans_id)
        request, tx = locked.request, locked.challenge.transaction
        if _expired(locked):
            _time_out_locked(locked)
            expired = True
        else:
            challenge_bytes = tx.acs_trans_id.bytes + secrets.token_bytes(16)
            options = webauthn.generate_authentication_options(
                rp_id=tx.issuer.webauthn_rp_id,
                challenge=challenge_bytes,
                timeout=ASSERTION_TIMEOUT_MS,
                allow_credentials=[PublicKeyCredentialDescriptor(id=bytes(device.credential_id))],
                user_verification=UserVerificationRequirement.REQUIRED,
            )
            first = request.state == AuthnRequest.PENDING
            request.state = AuthnRequest.PROCEEDED
            request.webauthn_challenge, request.proceeded_device, request.proceeded_at = challenge_bytes, device, timezone.now()
            request.save(update_fields=["state", "webauthn_challenge", "proceeded_device", "proceeded_at"])
            audit_record(issuer=tx.issuer, kind="oob.proceeded", actor=f"device:{device.pk}", acs_trans_id=tx.acs_trans_id,
                         data={"first": first})
    if expired:
        raise OobRefused("The time to confirm this payment in the app has run out.", code="authn_request_expired", status_code=409)
    return json.loads(webauthn.options_to_json(options))


def authn_request_cancel(*, device: Device, acs_trans_id) -> str:
    """The cardholder declined in the app. Returns the request's final state."""
    with transaction.atomic():
        locked = _lock(device, acs_trans_id)
        request = locked.request
        request.state, request.decided_device, request.decided_at = AuthnRequest.CANCELLED, device, timezone.now()
        request.save(update_fields=["state", "decided_device", "decided_at"])
        audit_record(issuer=request.issuer, kind="oob.cancelled", actor=f"device:{device.pk}", acs_trans_id=request.challenge_id)
        flow.challenge_fall_back_locked(locked.challenge, reason=flow.FALLBACK_CANCELLED, actor=f"device:{device.pk}")
    return request.state


def authn_request_assert(*, device: Device, acs_trans_id, credential: dict) -> str:
    """Verify the assertion and decide the request; returns the threeDSRequestorAppURL to go back
    to. Raises OobRefused after committing the failure (count, fallback, blocked device)."""
    refusal: OobRefused | None = None
    with transaction.atomic():
        locked = _lock(device, acs_trans_id)
        request, challenge = locked.request, locked.challenge
        tx = challenge.transaction
        actor = f"device:{device.pk}"
        if _expired(locked):
            _time_out_locked(locked)
            refusal = OobRefused("The time to confirm this payment in the app has run out.", code="authn_request_expired", status_code=409)
        elif request.state != AuthnRequest.PROCEEDED or request.proceeded_device_id != device.pk or request.webauthn_challenge is None:
            raise Conflict("Call proceed from this device first.", code="proceed_required")
        else:
            refusal = _verify_locked(locked, device=device, credential=credential, actor=actor)
            if refusal is None:
                now = timezone.now()
                request.state, request.decided_device, request.decided_at = AuthnRequest.APPROVED, device, now
                request.webauthn_challenge = None
                request.save(update_fields=["state", "decided_device", "decided_at", "webauthn_challenge"])
                audit_record(issuer=tx.issuer, kind="oob.approved", actor=actor, acs_trans_id=tx.acs_trans_id,
                             data={"sign_count": device.sign_count})
                flow.challenge_approve_locked(challenge, actor=actor)
    if refusal is not None:
        raise refusal
    return tx.three_ds_requestor_app_url


def _verify_locked(locked: _Locked, *, device: Device, credential: dict, actor: str) -> OobRefused | None:
    request, tx = locked.request, locked.challenge.transaction
    issuer = tx.issuer
    device = Device.objects.select_for_update().get(pk=device.pk)
    if not device.is_active:
        raise Conflict("This device is no longer active.", code="device_inactive")
    try:
        # The counter check is ours (below): py_webauthn's would not tell a clone from a bad signature.
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=bytes(request.webauthn_challenge),
            expected_rp_id=issuer.webauthn_rp_id,
            expected_origin=list(issuer.webauthn_origins),
            credential_public_key=bytes(device.public_key),
            credential_current_sign_count=0,
            require_user_verification=True,
        )
        if verified.credential_id != bytes(device.credential_id):
            raise WebAuthnException("The assertion was made with another credential.")
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        return _count_failure(locked, actor=actor, detail=str(exc) or exc.__class__.__name__)

    new_count, old_count = verified.new_sign_count, device.sign_count
    if (new_count or old_count) and new_count <= old_count:
        now = timezone.now()
        device.status, device.blocked_at = Device.STATUS_BLOCKED, now
        device.blocked_reason = f"sign counter went from {old_count} to {new_count}"
        device.save(update_fields=["status", "blocked_at", "blocked_reason"])
        audit_record(issuer=issuer, kind="device.blocked", actor="acs", obj=device, acs_trans_id=tx.acs_trans_id,
                     data={"reason": "sign_counter_not_increasing", "stored": old_count, "received": new_count})
        request.state, request.decided_device, request.decided_at = AuthnRequest.FAILED, device, now
        request.webauthn_challenge = None
        request.save(update_fields=["state", "decided_device", "decided_at", "webauthn_challenge"])
        flow.challenge_fall_back_locked(locked.challenge, reason=flow.FALLBACK_DEVICE_BLOCKED, actor="acs")
        return OobRefused(
            "The authenticator's signature counter did not increase: the device may have been cloned and is blocked.",
            code="device_blocked", status_code=403,
        )
    device.sign_count = new_count
    device.last_used_at = timezone.now()
    device.save(update_fields=["sign_count", "last_used_at"])
    return None


def _count_failure(locked: _Locked, *, actor: str, detail: str) -> OobRefused:
    request, tx = locked.request, locked.challenge.transaction
    request.assertion_failures += 1
    left = MAX_ASSERTION_FAILURES - request.assertion_failures
    audit_record(issuer=tx.issuer, kind="oob.assertion_refused", actor=actor, acs_trans_id=tx.acs_trans_id,
                 data={"detail": detail[:200], "failures": request.assertion_failures})
    if left <= 0:
        request.state, request.decided_at, request.webauthn_challenge = AuthnRequest.FAILED, timezone.now(), None
        request.save(update_fields=["assertion_failures", "state", "decided_at", "webauthn_challenge"])
        flow.challenge_fall_back_locked(locked.challenge, reason=flow.FALLBACK_ASSERTION_FAILED, actor="acs")
        return OobRefused(
            "The assertion could not be verified, too many times: this payment is no longer confirmed in the app.",
            code="assertion_failed_final", fields={"credential": [detail]},
        )
    request.save(update_fields=["assertion_failures"])
    return OobRefused(
        f"The assertion could not be verified ({left} attempt(s) left): {detail}", code="invalid_assertion",
        fields={"credential": [detail]},
    )
