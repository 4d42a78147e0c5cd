"""Issuer API: device-enrollment tokens (§5.1). SDK API: WebAuthn device registration (§5.3)."""

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.cards import selectors as card_selectors
from apps.core.crypto import Sealed, seal, unseal
from apps.core.exceptions import ApplicationError
from apps.core.idempotency import Replay, idempotency_finish
from apps.core.query import StrictQueryMixin
from apps.core.serializers import StrictCharField, StrictChoiceField, StrictSerializer
from apps.core.throttling import DeviceRateThrottle, failed_credentials_check, failed_credentials_record
from apps.devices import services
from apps.devices.models import PUSH_PLATFORMS
from apps.devices.sdk_auth import RevokedDeviceAuthentication
from apps.issuers.api import IssuerApiView


def _validate(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# ---------------------------------------------------------------- issuer API


class DeviceEnrollmentOutput(serializers.Serializer):
    enrollment_token = serializers.CharField()
    expires_at = serializers.DateTimeField()


# The response carries a secret: the Idempotency-Key record keeps it sealed, never in clear.
class DeviceEnrollmentCreateApi(IssuerApiView):

    @extend_schema(summary="Start a device enrollment", request=None, responses={201: DeviceEnrollmentOutput})
    def post(self, request, cardholder_id):
        cardholder = card_selectors.cardholder_get(issuer=self.issuer, cardholder_id=cardholder_id)
        enrollment, token = services.device_enrollment_create(cardholder=cardholder, actor=self.actor)
        data = DeviceEnrollmentOutput({"enrollment_token": token, "expires_at": enrollment.expires_at}).data
        return Response(data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _context(record) -> str:
        return f"idempotent-device-enrollment:{record.pk}"

    def handle_exception(self, exc):
        if isinstance(exc, Replay):
            body = dict(exc.record.response_body)
            sealed = Sealed(body.pop("sealed_key_id"), bytes.fromhex(body.pop("sealed_token")))
            body["enrollment_token"] = unseal(sealed, context=self._context(exc.record))
            return Response(body, status=exc.record.status_code, headers={"Idempotent-Replayed": "true"})
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        record = self._idempotency_record
        if record is not None and response.status_code < 400 and "enrollment_token" in (response.data or {}):
            stored = dict(response.data)
            sealed = seal(stored.pop("enrollment_token"), context=self._context(record))
            stored.update(sealed_key_id=sealed.key_id, sealed_token=sealed.blob.hex())
            idempotency_finish(record, status_code=response.status_code, body=stored)
            self._idempotency_record = None
        return super().finalize_response(request, response, *args, **kwargs)


# ---------------------------------------------------------------- SDK API


# The issuer app's calls. Errors have the SPEC §4 shape; a failed call writes nothing.
class SdkApiView(StrictQueryMixin, APIView):

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [DeviceRateThrottle]

    def dispatch(self, request, *args, **kwargs):
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        # The enrollment token is a credential too: an address past its failures is refused
        # before the token is looked at, and a wrong one counts (SPEC §4).
        failed_credentials_check(request)
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, ApplicationError) and exc.code == "invalid_enrollment_token":
            failed_credentials_record(self.request)
        return super().handle_exception(exc)


class RegistrationOptionsInput(StrictSerializer):
    enrollment_token = StrictCharField(max_length=128)


class RegistrationOptionsApi(SdkApiView):
    @extend_schema(
        summary="Registration options (WebAuthn)",
        request=RegistrationOptionsInput,
        responses={200: OpenApiResponse(description="WebAuthn PublicKeyCredentialCreationOptions (JSON).")},
    )
    def post(self, request):
        data = _validate(RegistrationOptionsInput, request.data)
        return Response(services.registration_options_create(enrollment_token=data["enrollment_token"]))


class PushInput(StrictSerializer):
    platform = StrictChoiceField(choices=PUSH_PLATFORMS)
    token = StrictCharField(max_length=4096)


@extend_schema_field(OpenApiTypes.OBJECT)
class CredentialField(serializers.JSONField):
    default_error_messages = {"invalid": "Must be a JSON object: the PublicKeyCredential of navigator.credentials.create()."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        return super().to_internal_value(data)


class RegistrationInput(StrictSerializer):
    enrollment_token = StrictCharField(max_length=128)
    credential = CredentialField()
    push = PushInput()
    device_name = StrictCharField(max_length=100, required=False, default="", allow_blank=True)


class RegistrationOutput(serializers.Serializer):
    device_id = serializers.UUIDField()
    device_token = serializers.CharField()


class RegistrationCreateApi(SdkApiView):
    @extend_schema(summary="Register a device", request=RegistrationInput, responses={201: RegistrationOutput})
    def post(self, request):
        data = _validate(RegistrationInput, request.data)
        registration = services.device_register(
            enrollment_token=data["enrollment_token"],
            credential=data["credential"],
            push_platform=data["push"]["platform"],
            push_token=data["push"]["token"],
            device_name=data["device_name"],
        )
        body = RegistrationOutput({"device_id": registration.device.pk, "device_token": registration.device_token}).data
        return Response(body, status=status.HTTP_201_CREATED)


class RegistrationCurrentApi(SdkApiView):
    authentication_classes = [RevokedDeviceAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Unregister this device", request=None, responses={204: None})
    def delete(self, request):
        services.device_revoke(device=request.auth, actor=str(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)
