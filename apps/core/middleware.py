from django.conf import settings

from apps.core.exceptions import error_response

MACHINE_PREFIXES = ("/api/", "/sdk/")


class ApiBodyLimitMiddleware:
    """Refuse oversized bodies on the machine APIs before anything reads them (413)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(MACHINE_PREFIXES):
            raw = request.META.get("CONTENT_LENGTH") or "0"
            try:
                length = int(raw)
            except ValueError:
                return error_response(400, "bad_content_length", "Content-Length is not a number.")
            if length > settings.API_MAX_BODY_BYTES:
                return error_response(
                    413,
                    "payload_too_large",
                    f"The request body is larger than {settings.API_MAX_BODY_BYTES} bytes.",
                )
        return self.get_response(request)
