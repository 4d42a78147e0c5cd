"""The OpenAPI description's error responses, added in one place for every operation.

drf-spectacular documents what a view's `@extend_schema` says, which is the success answer. The
errors are the same everywhere (SPEC §4: one JSON body, `apps.core.exceptions`), so this
AutoSchema adds them by rule instead of each view listing them — and the contract test
(tests/test_openapi_contract.py) checks the rules against what the views really answer.
"""

import inspect

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from apps.core.serializers import StrictSerializer

ERROR_MEDIA_TYPE = "application/json"

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    # What apps.core.idempotency accepts: 1 to 255 printable characters (headers carry ASCII;
    # surrounding spaces are not part of a header's value).
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]*[!-~])?$"},
    OpenApiParameter.HEADER,
    required=False,
    description="Replays the first response for the same key and body; another body with the same key is 409.",
)


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. `validation_error`, `not_found`, `throttled`.")
    message = serializers.CharField(help_text="For humans; may change.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field (dotted path) → messages; empty when the error is not about fields.",
    )


class Error(serializers.Serializer):
    error = ErrorDetail()


# Why each status can happen; an operation gets the ones whose rule applies to it.
DESCRIPTIONS = {
    "400": "Invalid request: a field, a query parameter (unknown parameters are refused too), "
           "malformed JSON or an invalid Idempotency-Key.",
    "401": "No or invalid credentials.",
    "403": "The credentials may not do this.",
    "404": "No such object for this caller (another issuer's objects do not exist here).",
    "406": "The Accept header asks for something other than JSON.",
    "409": "Conflicts with the current state: a duplicate, a state that no longer allows it, "
           "or an Idempotency-Key used with another request or still in progress.",
    "413": "The request body is too large.",
    "415": "The body is not application/json.",
    "429": "Too many requests; retry after `Retry-After` seconds (code `throttled`).",
}

RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before trying again.",
        "required": True,
    }
}

# Something besides white space, and no NUL (DRF refuses NUL characters in text).
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
NO_NUL = "^[^\\u0000]*$"

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ErrorResponsesAutoSchema(AutoSchema):
    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        # Every POST of the issuer API takes an Idempotency-Key (IssuerApiView.initial); the view
        # says so, so that core imports no app.
        if self.method == "POST" and getattr(self.view, "takes_idempotency_key", False):
            parameters = [*parameters, IDEMPOTENCY_KEY]
        return parameters

    def resolve_serializer(self, serializer, direction, bypass_extensions=False):
        component = super().resolve_serializer(serializer, direction, bypass_extensions)
        # A StrictSerializer refuses fields it does not know (400): the description says so.
        if not isinstance(component.schema, dict) or direction != "request":
            return component
        if isinstance(serializer, StrictSerializer):
            component.schema["additionalProperties"] = False
            # Inherited by every input without its own docstring: not a description of that input.
            if component.schema.get("description") == inspect.getdoc(StrictSerializer):
                del component.schema["description"]
        properties = component.schema.get("properties", {})
        for name, field in getattr(serializer, "fields", {}).items():
            # DRF trims text and then refuses it blank: whitespace alone is not a value.
            if not isinstance(field, serializers.CharField) or name not in properties or "pattern" in properties[name]:
                continue
            if field.trim_whitespace and not field.allow_blank:
                properties[name]["pattern"] = NOT_BLANK
            else:
                # DRF refuses a NUL character in any CharField (ProhibitNullCharactersValidator).
                properties[name]["pattern"] = NO_NUL
        return component

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error_ref = self.resolve_serializer(Error, "response").ref
        responses = operation.setdefault("responses", {})
        for status in self._error_statuses(operation, method):
            response = responses.setdefault(status, {"description": DESCRIPTIONS[status]})
            # A view may have given only a description: the body is still the error shape.
            response.setdefault("content", {ERROR_MEDIA_TYPE: {"schema": error_ref}})
            if status == "429":
                response.setdefault("headers", {}).update(RETRY_AFTER)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_statuses(self, operation, method) -> list[str]:
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        authenticated = any(requirement for requirement in operation.get("security", []))
        statuses = ["400", "429"]  # every operation refuses unknown query parameters; all are throttled
        if authenticated:
            statuses += ["401", "403"]
        if any(p["in"] == "path" for p in parameters):
            statuses.append("404")
        if has_body:
            statuses += ["413", "415"]
        if method.upper() in WRITE_METHODS:
            statuses.append("409")
        if self._negotiates_content():
            statuses.append("406")
        # Statuses a view declared itself keep their description and get the error body.
        statuses += [s for s in operation.get("responses", {}) if s.startswith(("4", "5"))]
        return list(dict.fromkeys(statuses))

    def _negotiates_content(self) -> bool:
        # DRF's negotiation answers 406 to an Accept it cannot serve; a JSON-only view never does.
        from rest_framework.negotiation import DefaultContentNegotiation

        negotiation = self.view.content_negotiation_class
        return negotiation is DefaultContentNegotiation
