import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404

from apps.core.exceptions import error_response

logger = logging.getLogger(__name__)

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


# Every error on these is JSON (SPEC §4), including the ones Django makes itself.
JSON_ERROR_PREFIXES = ("/api/", "/sdk/", "/3ds/", "/webhooks/")


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


class JsonErrorsMiddleware:
    """On the machine paths, the errors Django answers by itself become the SPEC §4 JSON error:
    a path with no route (404; with DEBUG on, Django's HTML debug page), a view decorator's
    empty 405, an Http404 or an exception escaping a plain view (HTML pages with DEBUG on).

    A view that chose its own error page is left alone: the cardholder's challenge page under
    /3ds/ answers a browser, in HTML, on purpose."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code not in (400, 404, 405) or not request.path.startswith(JSON_ERROR_PREFIXES):
            return response
        if _is_json(response):
            return response
        if response.status_code == 400 and request.resolver_match is None:
            # Refused before routing (a Host not in ALLOWED_HOSTS: handler400, or with DEBUG on
            # Django's HTML debug page).
            return error_response(400, "bad_request", "Bad request.")
        if response.status_code == 404 and request.resolver_match is None:
            return error_response(404, "not_found", "Not found.")
        if response.status_code == 405 and not response.content:
            # HttpResponseNotAllowed (require_POST and friends): keep its Allow header.
            return error_response(
                405, "method_not_allowed", f'Method "{request.method}" not allowed.', headers={"Allow": response["Allow"]}
            )
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(JSON_ERROR_PREFIXES):
            return None
        if isinstance(exception, Http404):
            return error_response(404, "not_found", "Not found.")
        if isinstance(exception, PermissionDenied):
            return error_response(403, "permission_denied", "You do not have permission to perform this action.")
        if isinstance(exception, RequestDataTooBig):
            return error_response(413, "payload_too_large", "The request body is too large.")
        if isinstance(exception, SuspiciousOperation):
            return error_response(400, "bad_request", "The request was refused.")
        # A response from here skips Django's own error logging: log it (scrubbed) here.
        logger.error("Unhandled error on %s", request.path, exc_info=exception)
        return error_response(500, "internal_error", "An internal error occurred.")


# ---------------------------------------------------------------- Content-Security-Policy


def content_security_policy(**directives: str) -> str:
    """The site's policy with some directives replaced (keyword: directive with _ for -)."""
    policy = dict(BASE_POLICY)
    policy.update({name.replace("_", "-"): value for name, value in directives.items()})
    return "; ".join(f"{name} {value}" for name, value in policy.items())


# Nothing inline, nothing from elsewhere, never framed: the admin, the analysts' workspace,
# error pages, JSON answers.
BASE_POLICY = {
    "default-src": "'none'",
    "style-src": "'self'",
    "script-src": "'self'",
    "img-src": "'self' data:",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "font-src": "'self'",
    "connect-src": "'self'",
}

# Per path prefix, first match wins. Swagger UI (served by its split view: no inline script)
# styles its elements with inline style attributes and one inline <style>.
PATH_POLICIES = (("/api/docs/", content_security_policy(style_src="'self' 'unsafe-inline'")),)
DEFAULT_POLICY = content_security_policy()


class ContentSecurityPolicyMiddleware:
    """One Content-Security-Policy mechanism for the whole site: every response gets the policy
    of its path. A view that needs a policy of its own per response (the 3-D Secure challenge
    pages: framed by any merchant, form-action depending on the page) builds it with
    content_security_policy() and sets it; that header is kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy_for(request.path)
        return response

    @staticmethod
    def policy_for(path: str) -> str:
        for prefix, policy in PATH_POLICIES:
            if path.startswith(prefix):
                return policy
        return DEFAULT_POLICY


# Staff pages follow the person's language (SPEC §5.6: Japanese and English); the machine
# interfaces and the cardholder pages keep their own rules (English errors, the cardholder's locale).
STAFF_PREFIXES = ("/admin/", "/analyst/", "/i18n/")
STAFF_LANGUAGES = ("en", "ja")


class StaffLocaleMiddleware:
    """Activate the staff user's language: the language cookie set by Django's `set_language`
    view, else the browser's Accept-Language, else English."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.utils import translation
        from django.utils.cache import patch_vary_headers

        if not request.path.startswith(STAFF_PREFIXES):
            return self.get_response(request)
        language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if language not in STAFF_LANGUAGES:
            language = translation.get_language_from_request(request)
            if language not in STAFF_LANGUAGES:
                language = "en"
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        return response
