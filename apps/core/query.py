"""Strict query strings for the issuer and SDK APIs: a parameter an operation does not know is a
400 (`validation_error`, the parameter named in `fields`), never silently ignored — a typo such as
`?staus=Y` must not quietly answer the unfiltered list. One rule for every operation; the OpenAPI
description says so (apps.core.openapi)."""

from rest_framework import exceptions


class StrictQueryMixin:
    # Method (lower case) → the query parameters it reads; none by default.
    allowed_query_params: dict[str, tuple[str, ...]] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication first: a 401 before a 400
        method = request.method.lower()
        allowed = self.allowed_query_params.get("get" if method == "head" else method, ())
        unknown = [name for name in request.query_params if name not in allowed]
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown parameter."] for name in unknown})
