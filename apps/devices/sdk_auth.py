"""`Authorization: Device <device_token>` for the SDK API (SPEC §5.3)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.core.throttling import failed_credentials_check, failed_credentials_record
from apps.devices.selectors import device_find_by_token
from apps.devices.services import device_touch


class DevicePrincipal:
    """The caller of the SDK API: one registered app instance."""

    is_authenticated = True

    def __init__(self, device):
        self.device = device
        self.issuer = device.issuer

    def __str__(self) -> str:
        return f"device:{self.device.pk}"


class DeviceAuthentication(authentication.BaseAuthentication):
    keyword = "Device"

    def __init__(self, *, allow_revoked: bool = False):
        # Revoked devices are refused, except where a view says revoking again is fine.
        self.allow_revoked = allow_revoked

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        failed_credentials_check(request)  # before the token is looked at
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "device" or not token:
            failed_credentials_record(request)
            raise exceptions.AuthenticationFailed("Use Authorization: Device <device token>.")
        device = device_find_by_token(token=token)
        if device is None or (not device.is_active and not self.allow_revoked):
            failed_credentials_record(request)
            raise exceptions.AuthenticationFailed("Unknown or revoked device token.")
        if device.is_active:
            device_touch(device=device)
        return DevicePrincipal(device), device

    def authenticate_header(self, request):
        return 'Device realm="sdk"'


def RevokedDeviceAuthentication() -> DeviceAuthentication:  # noqa: N802 (used as a class)
    """Also admits revoked devices: for idempotent unenrollment only. A DeviceAuthentication, not
    a subclass: the OpenAPI description then has one DeviceToken scheme, not two that collide."""
    return DeviceAuthentication(allow_revoked=True)


class DeviceAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.devices.sdk_auth.DeviceAuthentication"
    match_subclasses = True
    name = "DeviceToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Device <device token>`."}
