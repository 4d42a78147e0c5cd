"""The 3DS Method page at threeDSMethodURL (SPEC §3.8): `POST /3ds/v2/method`, and the page's
own collection post, `POST /3ds/v2/method/data`.

The 3DS Server loads the page in a hidden iframe of the merchant's page. Its one script
(static, same origin: threeds/method.js) collects the browser data, posts it here, then submits
the form to threeDSMethodNotificationURL; a timer submits it anyway, so the notification leaves
within 10 s whatever the collection does.

Security choices, as for the challenge page (apps.threeds.views_browser): framable by any origin
(X-Frame-Options dropped for this view, CSP frame-ancestors *), CSRF-exempt (the post is the
3DS Server's, cross-site), nothing loaded from elsewhere (default-src 'none', script from
'self', connect-src 'self'), form-action * (the notification goes to the merchant side, which
may redirect). Bad threeDSMethodData: a short HTML page, no notification, never a 500. The
collection post is bound to the page by a signed, short-lived token naming the transaction.
"""

import json
import logging

from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from apps.threeds import method
from apps.threeds.views_browser import FORM_ACTION_ANY, _error_page, content_security_policy

logger = logging.getLogger(__name__)

# The page's script gives up on the collection after this and notifies anyway (EMV: 10 s in all).
COLLECT_TIMEOUT_MS = 5000
FALLBACK_NOTIFY_MS = 8000


@csrf_exempt
@xframe_options_exempt
def method_page(request):
    if request.method != "POST":
        response = _error_page(status=405)
        response["Allow"] = "POST"
        return response
    try:
        raw = request.POST.get("threeDSMethodData", "")
        if "\x00" in raw:
            raise method.BadMethodData("NUL")
        server_trans_id, notification_url = method.method_data_read(raw)
    except method.BadMethodData as exc:
        logger.info("3DS Method refused: %s", exc)
        return _error_page(status=400)
    except Exception:  # oversized or broken body: bad input, not a 500
        logger.info("3DS Method refused: unreadable form")
        return _error_page(status=400)
    context = {
        "notification_url": notification_url,
        "method_data": method.notification_data(server_trans_id),
        "collect_url": reverse("threeds-method-data"),
        "collect_token": method.collect_token(server_trans_id),
        "collect_timeout_ms": COLLECT_TIMEOUT_MS,
        "fallback_ms": FALLBACK_NOTIFY_MS,
    }
    response = HttpResponse(render_to_string("threeds/method.html", context), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = content_security_policy(form_action=FORM_ACTION_ANY)
    response["Referrer-Policy"] = "strict-origin"  # the notification carries our origin, never a path
    add_never_cache_headers(response)
    return response


@csrf_exempt
def method_collect(request):
    """The page's data: `{token, data: {...}}` as JSON, at most 4 KB, only known keys."""
    if request.method != "POST":
        return JsonResponse({"error": "method_not_allowed"}, status=405, headers={"Allow": "POST"})
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = method.MAX_COLLECTED_BYTES + 1
    if length > method.MAX_COLLECTED_BYTES:
        return JsonResponse({"error": "too_large"}, status=413)
    try:
        body = request.body
        if len(body) > method.MAX_COLLECTED_BYTES:
            return JsonResponse({"error": "too_large"}, status=413)
        posted = json.loads(body)
    except Exception:  # not JSON, not UTF-8, a broken stream
        return JsonResponse({"error": "bad_request"}, status=400)
    if not isinstance(posted, dict) or set(posted) != {"token", "data"}:
        return JsonResponse({"error": "bad_request"}, status=400)
    server_trans_id = method.collect_token_read(posted["token"])
    if server_trans_id is None:
        return JsonResponse({"error": "refused"}, status=403)
    try:
        data = method.collected_validate(posted["data"])
    except method.BadMethodData as exc:
        logger.info("3DS Method data refused: %s", exc)
        return JsonResponse({"error": "bad_request"}, status=400)
    method.method_data_store(server_trans_id=server_trans_id, data=data)
    response = HttpResponse(status=204)
    add_never_cache_headers(response)
    return response
