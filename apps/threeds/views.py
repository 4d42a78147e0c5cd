"""DS- and cardholder-facing 3-D Secure endpoints. Protocol errors are Erro messages with HTTP 200,
never HTML or a stack trace."""

import json
from functools import wraps

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.threeds.messages import erro
from apps.threeds.areq import areq_process

MAX_MESSAGE_BYTES = 64 * 1024


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: Python accepts them, JSON does not


def read_json_message(request, *, message_type: str):
    """The request's JSON document, or an Erro response to send instead."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_MESSAGE_BYTES + 1
    if length > MAX_MESSAGE_BYTES:
        return None, JsonResponse(erro(code="101", detail="message too large", message_type=message_type))
    if request.content_type != "application/json":
        return None, JsonResponse(erro(code="101", detail="Content-Type must be application/json", message_type=message_type))
    try:
        return json.loads(request.body, parse_constant=_no_constants), None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, JsonResponse(erro(code="101", detail="message is not valid JSON", message_type=message_type))


def erro_unless_post(*, message_type: str):
    """A protocol endpoint asked with another method: 405 (Allow: POST) with an Erro 101 body,
    so a DS or SDK reads the same kind of answer as for any other unusable message."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method != "POST":
                body = erro(code="101", detail=f"HTTP method {request.method} not allowed; use POST", message_type=message_type)
                return JsonResponse(body, status=405, headers={"Allow": "POST"})
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


@csrf_exempt
@erro_unless_post(message_type="AReq")
def areq(request):
    message, error_response = read_json_message(request, message_type="AReq")
    if error_response is not None:
        return error_response
    outcome = areq_process(message)
    return JsonResponse(outcome.response)
