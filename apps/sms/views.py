"""Twilio message status callbacks (SPEC §5.5). Answers are small JSON bodies, never HTML."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

from apps.core.exceptions import error_response
from apps.sms import services

logger = logging.getLogger(__name__)


@csrf_exempt  # signed by Twilio instead; there is no browser session here
def twilio_status_callback(request, token: str):
    if request.method != "POST":
        return error_response(405, "method_not_allowed", "Use POST.", headers={"Allow": "POST"})
    try:
        params = request.POST
    except (RequestDataTooBig, SuspiciousOperation):
        return error_response(400, "bad_request", "The request body could not be read.")
    attempt = services.sms_attempt_for_callback(token=token)
    if attempt is None:
        # Unknown: acknowledge so the provider stops retrying, and change nothing.
        return JsonResponse({"status": "ignored"})

    auth_token = services.sms_callback_auth_token(attempt=attempt)
    # Twilio signs the URL it was given, which we built from PUBLIC_BASE_URL (a proxy may
    # change the Host and scheme this process sees).
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    signature = request.headers.get("X-Twilio-Signature", "")
    if not auth_token or not signature or not RequestValidator(auth_token).validate(url, params, signature):
        logger.warning("Rejected an SMS status callback with a bad signature (attempt %s)", attempt.pk)
        return error_response(403, "bad_signature", "The request signature is not valid.")

    changed = services.sms_status_apply(
        attempt_id=attempt.pk,
        message_sid=params.get("MessageSid", ""),
        status=params.get("MessageStatus") or params.get("SmsStatus", ""),
        error_code=params.get("ErrorCode", ""),
    )
    return JsonResponse({"status": "updated" if changed else "ignored"})
