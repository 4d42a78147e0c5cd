"""Reads. Tokens are found by their keyed hash: the clear token is never compared or stored."""

from apps.core.crypto import hash_secret
from apps.devices.models import Device, DeviceEnrollment

ENROLLMENT_TOKEN_PURPOSE = "device-enrollment-token"
DEVICE_TOKEN_PURPOSE = "device-token"


def device_enrollment_find(*, token: str) -> DeviceEnrollment | None:
    """The enrollment a token names, usable or not; None when no enrollment has this token."""
    if not token:
        return None
    return (
        DeviceEnrollment.objects.filter(token_hash=hash_secret(token, purpose=ENROLLMENT_TOKEN_PURPOSE))
        .select_related("issuer", "cardholder")
        .first()
    )


def device_find_by_token(*, token: str) -> Device | None:
    if not token:
        return None
    return (
        Device.objects.filter(token_hash=hash_secret(token, purpose=DEVICE_TOKEN_PURPOSE))
        .select_related("issuer", "cardholder")
        .first()
    )


def device_list(*, cardholder, active_only: bool = True):
    qs = Device.objects.filter(cardholder=cardholder)
    return qs.filter(status=Device.STATUS_ACTIVE) if active_only else qs
