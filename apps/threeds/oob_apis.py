"""SDK API for the issuer app's out-of-band step (SPEC §5.3): pending requests, proceed, cancel,
assertion. `Authorization: Device <device_token>`; a request of another device, cardholder or
issuer is 404, never a hint that it exists. In apps.threeds because proceed, cancel and the
assertion decide the challenge (oob_decisions); the pending list reads apps.oob's requests.

Each call runs in one transaction. A refused assertion is answered without raising, so its
failure count (and a fallback it triggers) commits with the error response."""

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import error_body
from apps.core.query import StrictQueryMixin
from apps.core.serializers import StrictSerializer
from apps.core.throttling import DeviceRateThrottle
from apps.devices.apis import CredentialField
from apps.devices.sdk_auth import DeviceAuthentication
from apps.oob import services
from apps.threeds import oob_decisions


def _refusal(refused) -> Response:
    return Response(error_body(refused.code, refused.message, refused.fields), status=refused.status_code)


class DeviceApiView(StrictQueryMixin, APIView):
    authentication_classes = [DeviceAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [DeviceRateThrottle]

    @property
    def device(self):
        return self.request.auth

    def dispatch(self, request, *args, **kwargs):
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)


class AuthnRequestOutput(serializers.Serializer):
    acsTransId = serializers.UUIDField()
    merchantName = serializers.CharField()
    purchaseAmount = serializers.CharField()
    purchaseCurrency = serializers.CharField()
    purchaseExponent = serializers.CharField()
    purchaseDate = serializers.CharField(help_text="yyyyMMddHHmmss, UTC")
    threeDSRequestorAppURL = serializers.CharField(allow_blank=True)
    cardLast4 = serializers.CharField()
    state = serializers.CharField()
    expiresAt = serializers.DateTimeField()


class AuthnRequestListOutput(serializers.Serializer):
    authnRequests = AuthnRequestOutput(many=True)


class AuthnRequestListApi(DeviceApiView):
    @extend_schema(summary="Pending authentication requests", responses={200: AuthnRequestListOutput})
    def get(self, request):
        pending = services.authn_requests_pending(device=self.device)
        return Response({"authnRequests": [services.confirmation_data(r) for r in pending]})


class AuthnRequestProceedApi(DeviceApiView):
    @extend_schema(summary="Proceed with an authentication request", request=None, responses={200: OpenApiResponse(description="WebAuthn PublicKeyCredentialRequestOptions (JSON).")})
    def post(self, request, acs_trans_id):
        try:
            return Response(oob_decisions.authn_request_proceed(device=self.device, acs_trans_id=acs_trans_id))
        except oob_decisions.OobRefused as refused:  # the fallback it triggered stays
            return _refusal(refused)


class AuthnRequestCancelOutput(serializers.Serializer):
    result = serializers.CharField()


class AuthnRequestCancelApi(DeviceApiView):
    @extend_schema(summary="Cancel an authentication request", request=None, responses={200: AuthnRequestCancelOutput})
    def post(self, request, acs_trans_id):
        oob_decisions.authn_request_cancel(device=self.device, acs_trans_id=acs_trans_id)
        return Response({"result": "cancelled"})


class AssertionInput(StrictSerializer):
    credential = CredentialField()


class AssertionOutput(serializers.Serializer):
    result = serializers.CharField()
    threeDSRequestorAppURL = serializers.CharField(allow_blank=True)


class AuthnRequestAssertionApi(DeviceApiView):
    @extend_schema(summary="Approve with an assertion", request=AssertionInput, responses={200: AssertionOutput})
    def post(self, request, acs_trans_id):
        serializer = AssertionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            app_url = oob_decisions.authn_request_assert(
                device=self.device, acs_trans_id=acs_trans_id, credential=serializer.validated_data["credential"]
            )
        except oob_decisions.OobRefused as refused:  # the failure count (and any fallback) stays
            return _refusal(refused)
        # The app sends the cardholder back to the merchant's app with it (D1 SDK sample).
        return Response({"result": "verified", "threeDSRequestorAppURL": app_url})
