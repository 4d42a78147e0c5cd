"""Base view of the issuer API: API-key auth, tenant scope, one transaction, Idempotency-Key."""

from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.idempotency import HEADER, Replay, idempotency_begin, idempotency_finish
from apps.core.query import StrictQueryMixin
from apps.core.throttling import ApiKeyRateThrottle
from apps.issuers.authentication import ApiKeyAuthentication


class IssuerApiView(StrictQueryMixin, APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]
    # A POST may carry an Idempotency-Key (initial below); read by apps.core.openapi.
    takes_idempotency_key = True

    _idempotency_record = None

    @property
    def issuer(self):
        return self.request.user.issuer

    @property
    def actor(self) -> str:
        return str(self.request.user)

    def dispatch(self, request, *args, **kwargs):
        # A request either writes all it means to or nothing: the exception handler rolls back.
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key = request.META.get(HEADER)
        if request.method == "POST" and key is not None:
            self._idempotency_record = idempotency_begin(
                scope=f"issuer:{self.issuer.pk}",
                key=key,
                method=request.method,
                path=request.path,
                body=request._request.body,
            )

    def handle_exception(self, exc):
        if isinstance(exc, Replay):
            return Response(
                exc.record.response_body, status=exc.record.status_code, headers={"Idempotent-Replayed": "true"}
            )
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        record = self._idempotency_record
        if record is not None and response.status_code < 400:
            idempotency_finish(record, status_code=response.status_code, body=response.data)
        return super().finalize_response(request, response, *args, **kwargs)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.issuers.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Issuer API key: `ik_<prefix>_<secret>`."}
