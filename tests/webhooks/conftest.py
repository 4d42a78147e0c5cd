"""A local issuer backend for the webhook tests, and helpers shared by them."""

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.signals import before_task_publish
from django.conf import settings
from django.utils import timezone

from apps.webhooks.services import deliver_otp_payload, webhook_signature_verify
from tests.factories import IssuerFactory

HANG = "hang"


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    signature_ok: bool
    at: float  # time.monotonic() on arrival
    answered: int | None = None


@dataclass
class Receiver:
    """Verifies signatures as an issuer's backend must (skew over 300 s refused), records every
    request and answers as programmed: `answer(500, (429, {"Retry-After": "1"}), HANG, 204)`.
    Once the script is used up it answers `default`."""

    secret: str | None = None
    default: object = 204
    received: list[Received] = field(default_factory=list)
    _script: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, *responses) -> None:
        with self._lock:
            self._script = list(responses)

    def next_response(self):
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    def record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)


def _handler_for(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            signature_ok = bool(receiver.secret) and webhook_signature_verify(
                secret=receiver.secret, header=self.headers.get("X-Signature", ""), body=body
            )
            request = Received(self.path, dict(self.headers), body, signature_ok, time.monotonic())
            receiver.record(request)
            response = receiver.next_response()
            if response == HANG:
                time.sleep(settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + 0.5)  # the sender has given up by now
                response = 204
            status, headers, payload = _normalise(response)
            if not signature_ok:
                status, headers, payload = 401, {}, b'{"error": "bad signature"}'
            if callable(payload):
                payload = payload(body)
            request.answered = status
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the sender hung up (timeout)

        def log_message(self, *args):
            pass

    return Handler


def _normalise(response) -> tuple[int, dict, object]:
    if isinstance(response, int):
        return response, {}, b""
    status, headers, *rest = response
    return status, headers, rest[0] if rest else b""


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
    receiver.server.daemon_threads = True
    thread = threading.Thread(target=receiver.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def webhook_issuer(receiver):
    """An issuer whose DeliverOTP URL is the receiver, sharing its webhook secret with it."""
    issuer = IssuerFactory(deliver_otp_url=f"{receiver.url}/deliver-otp")
    receiver.secret = "whsec_test_" + secrets.token_urlsafe(24)
    issuer.set_webhook_secret(receiver.secret)
    issuer.save()
    return issuer


def new_otp() -> str:
    # Eight random digits: unique per test, so finding it anywhere is a real leak.
    return f"{secrets.randbelow(10**8):08d}"


def make_otp_payload(issuer, *, otp: str, acs_trans_id: str = "8a880dc0-d2d2-4067-bcb1-b08d1690b26e") -> dict:
    return deliver_otp_payload(
        operation_id="0f8e36a5-5b9b-4e0b-9a51-7d1f25b1c0aa",
        issuer_id=issuer.issuer_id,
        card_id="card-001",
        consumer_id="cust-001",
        acs_trans_id=acs_trans_id,
        otp=otp,
        otp_expires_at=timezone.now() + timedelta(minutes=5),
        locale="ja",
        masked_phone="+81 ** **** 5678",
        merchant_name="東京マート",
        purchase_amount="12345",
        purchase_currency="392",
        purchase_exponent="0",
    )


@pytest.fixture
def published():
    """Every task message this process publishes, as the broker receives it."""
    messages = []

    def record(sender=None, body=None, headers=None, routing_key=None, **kwargs):
        messages.append({"task": sender, "body": body, "headers": headers, "routing_key": routing_key})

    before_task_publish.connect(record, weak=False)
    yield messages
    before_task_publish.disconnect(record)


@pytest.fixture
def eager_tasks():
    """Tasks run in this process, whatever the broker settings (countdowns are not waited for)."""
    from issuer_portal.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
