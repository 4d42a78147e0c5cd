import json

import pytest

from apps.cards.models import Phone
from apps.otp.services import otp_policy_create_default, otp_policy_save
from tests.factories import make_card

DETAILS = {"merchantName": "Tokyo Books", "purchaseAmount": "1500", "purchaseCurrency": "392", "purchaseExponent": "0"}


@pytest.fixture
def in_process_tasks():
    """Run tasks inline in this process even when a broker is configured (CI), so a test can
    read what they did with its own settings."""
    from issuer_portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def sms_file(settings, tmp_path, in_process_tasks):
    """Every SMS the service sends lands in this JSON-lines file (the `file` provider)."""
    settings.SMS_BACKEND = "file"
    settings.SMS_FALLBACK_BACKEND = ""
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")

    class Inbox:
        path = tmp_path / "sms.jsonl"

        def messages(self):
            if not self.path.exists():
                return []
            return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

        def last_code(self, length=6):
            import re

            body = self.messages()[-1]["body"]
            return re.search(r"\b\d{%d}\b" % length, body).group(0)

    return Inbox()


@pytest.fixture
def policy(issuer):
    version = otp_policy_create_default(issuer=issuer)
    return version.policy


@pytest.fixture
def set_policy(policy):
    def apply(**changes):
        for key, value in changes.items():
            setattr(policy, key, value)
        return otp_policy_save(policy=policy, actor="tests")

    return apply


@pytest.fixture
def card(cardholder):
    return make_card(cardholder=cardholder)


@pytest.fixture
def phone(cardholder):
    return Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True)
