import importlib
import json
import secrets
import uuid

import pytest
from django.db import transaction

from apps.devices.models import PUSH_APNS, PUSH_FCM, Device
from apps.push.models import PushDelivery
from apps.push.providers import access_tokens
from apps.push.services import push_authn_request
from apps.push.tasks import push_send
from tests.factories import CardholderFactory
from tests.support.delivery import sweep_until_settled


def new_push_token() -> str:
    """An FCM registration token no other test uses: the fake FCM counts messages per token."""
    return f"fcm-{secrets.token_urlsafe(24)}:APA91b{secrets.token_urlsafe(60)}"


def make_device(*, issuer, platform: str = PUSH_FCM, push_token: str | None = None, status: str = Device.STATUS_ACTIVE,
                cardholder=None) -> Device:
    """A registered device as apps.devices leaves it (the WebAuthn parts are not used here)."""
    device = Device(
        issuer=issuer,
        cardholder=cardholder or CardholderFactory(issuer=issuer),
        name="Pixel 9",
        status=status,
        credential_id=secrets.token_bytes(32),
        public_key=secrets.token_bytes(77),
        attestation_format="none",
        push_platform=platform,
        token_hash=secrets.token_hex(32),
    )
    device.set_push_token(push_token or new_push_token())
    device.save()
    return device


@pytest.fixture
def device(issuer):
    return make_device(issuer=issuer)


@pytest.fixture
def apns_device(issuer):
    return make_device(issuer=issuer, platform=PUSH_APNS, push_token=secrets.token_hex(32))


def create(device, acs_trans_id=None) -> PushDelivery:
    """A push as the OOB flow asks for it: inside its transaction (committed at the end here)."""
    with transaction.atomic():
        return push_authn_request(device=device, acs_trans_id=acs_trans_id or uuid.uuid4())


def send_now(delivery) -> PushDelivery:
    """Run the task here: the tries due now (in process, a retry after a backoff is the sweep's).
    Judged by the rows it leaves, as a worker's would be: an error in the task is not raised here."""
    push_send.apply(args=[str(delivery.pk)], throw=False)
    return reload(delivery)


def send_with_retries(delivery) -> PushDelivery:
    """send_now, then the retries as the sweep makes them in process, without the backoffs."""
    send_now(delivery)
    sweep_until_settled("push")
    return reload(delivery)


def reload(delivery) -> PushDelivery:
    return PushDelivery.objects.get(pk=delivery.pk)


def outcomes(delivery) -> list[str]:
    """The engine's state of every try, in order."""
    return [a.state for a in delivery.attempts.order_by("number")]


def oob_hook_ready() -> bool:
    try:
        return hasattr(importlib.import_module("apps.threeds.oob_decisions"), "oob_push_undeliverable")
    except ImportError:
        return False


needs_oob_hook = pytest.mark.skipif(
    not oob_hook_ready(), reason="apps.threeds.oob_decisions.oob_push_undeliverable is not written yet"
)


@pytest.fixture
def fake_fcm(fcm_server, settings):
    """The session's fake FCM, emptied, with this process's settings matching the worker's."""
    fcm_server.reset()
    for name, value in fcm_server.django_settings().items():
        setattr(settings, name, value)
    settings.OUTBOUND_BACKOFF_BASE_SECONDS = 0.05
    settings.OUTBOUND_BACKOFF_MAX_SECONDS = 0.5
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 1.0
    access_tokens.clear()
    yield fcm_server
    assert fcm_server.violations == [], "requests that a real FCM or Google token endpoint would refuse"


class PushFile:
    def __init__(self, path):
        self.path = path

    def lines(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


@pytest.fixture
def push_file(tmp_path, settings):
    settings.PUSH_BACKEND = "file"
    settings.PUSH_FILE_PATH = str(tmp_path / "push.jsonl")
    return PushFile(tmp_path / "push.jsonl")


@pytest.fixture
def eager_tasks():
    """Tasks run here, at commit, also when the run has a broker (the worker tests use it). As
    without a broker, an error in a task does not fail the caller's commit."""
    from issuer_portal.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


class Reports:
    """Every push_undeliverable report this test sees; the first `failures` of them raise."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.calls: list[dict] = []

    def __call__(self, sender, **kwargs):
        self.calls.append(kwargs)
        if len(self.calls) <= self.failures:
            raise RuntimeError("the OOB flow is unavailable")


@pytest.fixture
def reports():
    """Connects a Reports receiver (after apps.threeds'); set .failures to make reports raise."""
    from apps.push.signals import push_undeliverable

    receiver = Reports()
    push_undeliverable.connect(receiver, weak=False, dispatch_uid="tests.push.reports")
    yield receiver
    push_undeliverable.disconnect(dispatch_uid="tests.push.reports")
