"""One domain error and one exception handler: every API error has the shape of SPEC §4.

    {"error": {"code": "<machine_code>", "message": "<human text>", "fields": {...}}}
"""

import logging
import math

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import transaction
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A business rule said no. Services raise it; the API turns it into the error shape."""

    def __init__(self, message: str, *, code: str, status_code: int = 400, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.fields = fields or {}


class Conflict(ApplicationError):
    def __init__(self, message: str, *, code: str = "conflict", fields: dict | None = None):
        super().__init__(message, code=code, status_code=409, fields=fields)


class NotFound(ApplicationError):
    def __init__(self, message: str = "Not found.", *, code: str = "not_found"):
        super().__init__(message, code=code, status_code=404)


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(status_code: int, code: str, message: str, fields: dict | None = None, headers=None):
    """For plain Django views and middleware (outside DRF)."""
    response = JsonResponse(error_body(code, message, fields), status=status_code)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _flatten(detail) -> dict:
    """DRF's nested error details → {"field": ["message", ...]} with dotted paths."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value):
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list):
            if all(not isinstance(v, (dict, list)) for v in value):
                out.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in value)
            else:
                for i, sub in enumerate(value):
                    walk(f"{prefix}[{i}]", sub)
        else:
            out.setdefault(prefix or "non_field_errors", []).append(str(value))

    walk("", detail)
    return out


_DRF_CODES = {
    exceptions.ParseError: ("malformed_json", "The request body is not valid JSON."),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", "Send the body as application/json."),
    exceptions.MethodNotAllowed: ("method_not_allowed", None),
    exceptions.NotAcceptable: ("not_acceptable", None),
    exceptions.NotAuthenticated: ("not_authenticated", "Authentication credentials were not provided."),
    exceptions.AuthenticationFailed: ("authentication_failed", None),
    exceptions.PermissionDenied: ("permission_denied", None),
    exceptions.NotFound: ("not_found", "Not found."),
    exceptions.Throttled: ("throttled", None),
}


def api_exception_handler(exc, context):
    # A failed request writes nothing (the API views run inside a transaction).
    if transaction.get_connection().in_atomic_block:
        transaction.set_rollback(True)

    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", "The request body is too large."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )

    if isinstance(exc, exceptions.ValidationError):
        return Response(
            error_body("validation_error", "The request has invalid fields.", _flatten(exc.detail)),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.APIException):
        code, message = "error", None
        for cls, (c, m) in _DRF_CODES.items():
            if isinstance(exc, cls):
                code, message = c, m
                break
        if message is None:
            message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "Request refused."
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))  # whole seconds, never 0
        return Response(error_body(code, message), status=exc.status_code, headers=headers)

    # Unexpected: log it (scrubbed), answer in the same shape, never a stack trace.
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    return Response(
        error_body("internal_error", "An internal error occurred; nothing was changed."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
