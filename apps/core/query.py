"""Strict query strings for the issuer and SDK APIs: a parameter an operation does not know is a
400 (`validation_error`, the parameter named in `fields`), never silently ignored — a typo such as
`?staus=Y` must not quietly answer the unfiltered list. One rule for every operation; the OpenAPI
description says so (apps.core.openapi)."""

from rest_framework import exceptions


class StrictQueryMixin:
    # Method (lower case) → the query parameters it reads; none by default.
    allowed_query_params: dict[str, tuple[str, ...]] = {}

    def _unknown_query_params(self, request) -> list[str]:
        method = request.method.lower()
        allowed = self.allowed_query_params.get("get" if method == "head" else method, ())
        return [name for name in request.query_params if name not in allowed]

    def perform_content_negotiation(self, request, force=False):
        # DRF takes `?format=` as a renderer switch and answers an unknown one with 404, before
        # initial() checks the query: when the query is refused anyway, that 400 is the answer.
        return super().perform_content_negotiation(request, force=force or bool(self._unknown_query_params(request)))

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication first: a 401 before a 400
        unknown = self._unknown_query_params(request)
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown parameter."] for name in unknown})
