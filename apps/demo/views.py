"""The demo issuer app (`/demo/app/`, served only with DEBUG): the issuer's mobile app played by a
browser page, so a person can watch the out-of-band challenge end to end (SPEC §3.4, §5.3).

The page registers the browser as the cardholder's device with the browser's own WebAuthn
authenticator and answers OOB requests, all through the real SDK API (`/sdk/v1/`, apps/demo/
static/demo/app.js). The one thing a real app gets from its issuer's backend — the device-
enrollment token the issuer API mints — `enrollment_create` below mints, as that backend would,
with the same service; only for the demo issuer's cardholders.
"""

from functools import wraps

from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.cards.models import Cardholder
from apps.demo.management.commands.seed_demo import APP_CARDHOLDER, ISSUER_ID
from apps.devices.services import device_enrollment_create

ACTOR = "demo-app"
# The app speaks the phone's language: the browser's, English or Japanese (the demo issuer's).
APP_LANGUAGES = ("en", "ja")


def debug_only(view):
    """Nothing of the demo exists without DEBUG: 404, as for any unknown path."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not settings.DEBUG:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


def _demo_cardholders():
    return Cardholder.objects.filter(issuer__issuer_id=ISSUER_ID).order_by("external_id").prefetch_related("cards")


@debug_only
@require_GET
def app_page(request):
    cardholders = list(_demo_cardholders())
    language = translation.get_language_from_request(request)
    with translation.override(language if language in APP_LANGUAGES else "en"):
        response = render(request, "demo/app.html", {
            "cardholders": cardholders,
            "selected": APP_CARDHOLDER if any(c.external_id == APP_CARDHOLDER for c in cardholders) else "",
        })
    response.headers["Content-Language"] = language if language in APP_LANGUAGES else "en"
    response.headers["Vary"] = "Accept-Language"
    return response


@debug_only
@require_POST
def enrollment_create(request):
    """The issuer backend's part: a device-enrollment token for a demo cardholder (form field
    `cardholder`: the external_id). JSON like the issuer API's answer."""
    cardholder = _demo_cardholders().filter(external_id=request.POST.get("cardholder", "")).first()
    if cardholder is None:
        return JsonResponse(
            {"error": {"code": "validation_error", "message": _("Choose one of the demo cardholders."),
                       "fields": {"cardholder": [_("Not a demo cardholder.")]}}},
            status=400,
        )
    enrollment, token = device_enrollment_create(cardholder=cardholder, actor=ACTOR)
    return JsonResponse({"enrollment_token": token, "expires_at": enrollment.expires_at.isoformat()}, status=201)
