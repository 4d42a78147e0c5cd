import itertools
import random
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from twilio.request_validator import RequestValidator

from apps.sms.models import SmsDelivery

CODE = "493817"
_numbers = itertools.count(random.randrange(10**6))


def new_number() -> str:
    """A Japanese mobile number no other test uses: requests are counted per destination."""
    return f"+8190{next(_numbers) % 10**8:08d}"


def otp_body(code: str = CODE) -> str:
    return f"{code} is your verification code for Demo Shop (JPY 1,200). It expires in 5 min."


@pytest.fixture
def fake_twilio(twilio_server, settings):
    """The session's fake Twilio, emptied, with this process's settings matching the worker's."""
    twilio_server.reset()
    for name, value in twilio_server.django_settings().items():
        setattr(settings, name, value)
    yield twilio_server
    assert twilio_server.violations == [], "requests or answers that break Twilio's OpenAPI description"


def callback_url(attempt) -> str:
    return django_settings.PUBLIC_BASE_URL + reverse("sms:twilio-status", args=[attempt.callback_token])


def post_callback(client, attempt, *, status: str, message_sid: str | None = None, token: str | None = None,
                  signature: str | None = None, **extra):
    """POST a status callback the way Twilio does: form-encoded, signed over URL and params."""
    params = {
        "MessageSid": message_sid if message_sid is not None else attempt.provider_message_id,
        "SmsSid": message_sid if message_sid is not None else attempt.provider_message_id,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": attempt.account_sid,
        "To": attempt.delivery.to,
        "ApiVersion": "2010-04-01",
        **extra,
    }
    url = callback_url(attempt)
    if signature is None:
        signature = RequestValidator(token or django_settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    path = url.removeprefix(django_settings.PUBLIC_BASE_URL)
    return client.post(path, urlencode(params), content_type="application/x-www-form-urlencoded", **headers)


def reload(delivery) -> SmsDelivery:
    return SmsDelivery.objects.get(pk=delivery.pk)
