"""The out-of-band request (SPEC §3.4, §5.3): made for a challenge and pushed to the cardholder's
active devices, closed when the challenge moves on, and what the app lists and shows of it.

What the app's answers decide about the challenge (proceed, cancel, the WebAuthn assertion, a
push that cannot be delivered) is apps/threeds/oob_decisions.py: deciding takes the challenge's
lock and ends or falls back the challenge, and apps.oob does not import apps.threeds
(threeds → oob → push → devices). The functions here that take a challenge are called by it,
with the challenge row already locked.
"""

from datetime import timedelta

from django.utils import timezone

from apps.audit.services import audit_record
from apps.devices.models import Device
from apps.oob.models import AuthnRequest
from apps.push.services import push_authn_request


def active_devices(cardholder_id) -> list[Device]:
    """With their issuer (the push records its audit event under it)."""
    return list(
        Device.objects.filter(cardholder_id=cardholder_id, status=Device.STATUS_ACTIVE).select_related("issuer").order_by("created_at")
    )


def has_active_device(cardholder_id) -> bool:
    return Device.objects.filter(cardholder_id=cardholder_id, status=Device.STATUS_ACTIVE).exists()


# ---------------------------------------------------------------- from the challenge


def oob_request_start(*, challenge, oob_timeout_seconds: int, audit: list | None = None) -> AuthnRequest | None:
    """Inside the locked challenge's transaction: the request and a push to every active device.
    None when the cardholder has no active device any more (revoked since the ARes). `audit`: the
    caller's list of events to write in one INSERT (else written here). The request's devices are
    written in one INSERT (a new request has none yet)."""
    tx = challenge.transaction
    devices = active_devices(tx.card.cardholder_id) if tx.card else []
    if not devices:
        return None
    now = timezone.now()
    request = AuthnRequest.objects.create(
        issuer=tx.issuer,
        challenge=challenge,
        cardholder_id=tx.card.cardholder_id,
        expires_at=now + timedelta(seconds=oob_timeout_seconds),
    )
    through = AuthnRequest.devices.through
    through.objects.bulk_create([through(authnrequest=request, device=device) for device in devices])
    audit_record(
        issuer=tx.issuer, kind="oob.request_created", actor="acs", acs_trans_id=tx.acs_trans_id,
        data={"devices": [str(d.pk) for d in devices], "expires_at": request.expires_at.isoformat()},
        batch=audit,
    )
    for device in devices:
        push_authn_request(device=device, acs_trans_id=tx.acs_trans_id)
    return request


def oob_request_close(*, challenge, state: str) -> None:
    """The challenge moved on (fallback, timeout, cancel on the page): the app can no longer act."""
    AuthnRequest.objects.filter(challenge=challenge, state__in=AuthnRequest.OPEN_STATES).update(state=state, decided_at=timezone.now())


# ---------------------------------------------------------------- SDK API (apps/threeds/oob_apis.py)


def confirmation_data(request: AuthnRequest) -> dict:
    """What the app shows (the D1 SDK's transaction confirmation data), and nothing else."""
    tx = request.challenge.transaction
    return {
        "acsTransId": str(tx.acs_trans_id),
        "merchantName": tx.merchant_name,
        "purchaseAmount": str(tx.purchase_amount) if tx.purchase_amount is not None else "",
        "purchaseCurrency": tx.purchase_currency,
        "purchaseExponent": str(tx.purchase_exponent) if tx.purchase_exponent is not None else "",
        "purchaseDate": tx.purchase_date,  # yyyyMMddHHmmss, UTC (EMV)
        "threeDSRequestorAppURL": tx.three_ds_requestor_app_url,
        "cardLast4": tx.pan_last4,
        "state": request.state,
        "expiresAt": request.expires_at.isoformat().replace("+00:00", "Z"),
    }


def authn_requests_pending(*, device: Device) -> list[AuthnRequest]:
    now = timezone.now()
    return list(
        AuthnRequest.objects.filter(devices=device, state__in=AuthnRequest.OPEN_STATES, expires_at__gt=now)
        .select_related("challenge__transaction")
        .order_by("created_at")
    )
