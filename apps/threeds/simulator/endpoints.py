"""The parties' HTTP endpoints the ACS calls back, on one small local server in a thread:

- the DS's dsURL: receives RReqs and answers an RRes with resultsStatus 01 (or fails the next N
  with `fail_rreqs(n)`);
- the merchant's notificationURL: receives the final CRes form post of the browser channel;
- the issuer backend's 3DS notification endpoint (`issuer_base_url`, what goes into
  `Issuer.notification_base_url`): receives the signed notifications.

Everything received is kept in order; `wait_*` block until the awaited message has arrived.
Anything else (an unknown path, an RReq that is not a JSON object, what `rreq_check` finds
wrong) lands in `violations`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from apps.threeds.simulator.errors import Unexpected
from apps.threeds.simulator.messages import b64url_decode, rres_for

DS_PATH = "/ds/rreq"
NOTIFY_PATH = "/merchant/notify"
ISSUER_PREFIX = "/issuer-backend"
_NOTIFICATION_PATH = re.compile(
    r"^" + re.escape(ISSUER_PREFIX) + r"/notifications/d1/v1/issuers/(?P<issuer>[A-Za-z0-9]{10})/cards/(?P<card>[^/]+)/3ds/notifications$"
)
FINISHED_PAGE = b"<!doctype html><html><body><p>Challenge finished.</p></body></html>"


@dataclass
class ReceivedRReq:
    message: dict | None
    body: bytes
    answered: int | None = None  # the HTTP status we answered; 200 = RRes 01
    at: float = field(default_factory=time.monotonic)

    @property
    def acknowledged(self) -> bool:
        return self.answered == 200


@dataclass
class CResPost:
    """A final CRes form post at notificationURL (what the challenge page hands back)."""

    form: dict
    at: float = field(default_factory=time.monotonic)

    @property
    def cres(self) -> dict:
        return b64url_decode(self.form["cres"])


@dataclass
class IssuerNotification:
    path: str
    headers: dict
    body: bytes
    issuer_id: str
    card_id: str
    at: float = field(default_factory=time.monotonic)

    @property
    def payload(self) -> dict:
        return json.loads(self.body)

    def signature_valid(self, secret: str, tolerance: int = 300) -> bool:
        """What the issuer's backend does: HMAC-SHA256 over "<t>.<raw body>", bounded skew."""
        parts = dict(item.strip().partition("=")[::2] for item in self.headers.get("X-Signature", "").split(","))
        if not parts.get("t", "").isdigit() or "v1" not in parts:
            return False
        if abs(time.time() - int(parts["t"])) > tolerance:
            return False
        expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])


def _cres_of(post: CResPost) -> dict:
    try:
        cres = post.cres
    except (KeyError, ValueError):  # not base64url JSON: never the awaited CRes
        return {}
    return cres if isinstance(cres, dict) else {}


def _same_id(a, b) -> bool:
    return str(a or "").lower() == str(b or "").lower()


class Endpoints:
    """dsURL, notificationURL and the issuer's notification endpoint on one local server.
    `public_base_url`: how the ACS reaches it, when not at http://host:port (a container)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, public_base_url: str = "",
                 rreq_check: Callable[[object], list[str]] | None = None):
        self.host = host
        self.port = port
        self.public_base_url = public_base_url.rstrip("/")
        self.rreq_check = rreq_check
        self._cond = threading.Condition()
        self._rreq_failures: list[int] = []
        self.rreq_log: list[ReceivedRReq] = []
        self.cres_log: list[CResPost] = []
        self.notification_log: list[IssuerNotification] = []
        self.violations: list[str] = []
        self._httpd = None

    # -------------------------------------------------- lifecycle

    def start(self) -> Endpoints:
        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload, content_type = endpoints._handle(urlsplit(self.path).path, dict(self.headers), body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args):  # quiet: callers report what matters
                pass

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="simulator-endpoints",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.public_base_url or f"http://{self.host}:{self._httpd.server_address[1]}"

    @property
    def ds_url(self) -> str:
        return self.url + DS_PATH

    @property
    def notification_url(self) -> str:
        return self.url + NOTIFY_PATH

    @property
    def issuer_base_url(self) -> str:
        return self.url + ISSUER_PREFIX

    # -------------------------------------------------- programming

    def fail_rreqs(self, times: int, status: int = 500) -> None:
        """The DS answers the next `times` RReqs with this HTTP status, then RRes 01 again."""
        with self._cond:
            self._rreq_failures = [status] * times

    # -------------------------------------------------- handling

    def _handle(self, path: str, headers: dict, body: bytes) -> tuple[int, bytes, str]:
        if path == DS_PATH:
            return self._rreq(body)
        if path == NOTIFY_PATH:
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            with self._cond:
                self.cres_log.append(CResPost(form))
                self._cond.notify_all()
            return 200, FINISHED_PAGE, "text/html; charset=utf-8"
        match = _NOTIFICATION_PATH.match(path)
        if match:
            with self._cond:
                self.notification_log.append(IssuerNotification(path, headers, body, match["issuer"], match["card"]))
                self._cond.notify_all()
            return 204, b"", "text/plain"
        with self._cond:
            self.violations.append(f"a POST to an unknown path {path}")
        return 404, b"not found", "text/plain"

    def _rreq(self, body: bytes) -> tuple[int, bytes, str]:
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        received = ReceivedRReq(message if isinstance(message, dict) else None, body)
        problems = self.rreq_check(message) if self.rreq_check else []
        with self._cond:
            self.violations += [f"RReq {(received.message or {}).get('acsTransID')}: {p}" for p in problems]
            if received.message is None:
                self.violations.append("an RReq that is not a JSON object")
                failure = 400
            else:
                failure = self._rreq_failures.pop(0) if self._rreq_failures else None
            received.answered = failure or 200
            self.rreq_log.append(received)
            self._cond.notify_all()
        if failure:
            return failure, b'{"error": "DS temporarily unavailable"}', "application/json"
        return 200, json.dumps(rres_for(received.message)).encode(), "application/json"

    # -------------------------------------------------- reading back

    def rreqs(self, acs_trans_id=None) -> list[ReceivedRReq]:
        with self._cond:
            return [r for r in self.rreq_log
                    if acs_trans_id is None or _same_id((r.message or {}).get("acsTransID"), acs_trans_id)]

    def acknowledged(self, acs_trans_id=None) -> list[ReceivedRReq]:
        return [r for r in self.rreqs(acs_trans_id) if r.acknowledged]

    def cres_posts(self) -> list[CResPost]:
        with self._cond:
            return list(self.cres_log)

    def notifications(self, acs_trans_id=None) -> list[IssuerNotification]:
        with self._cond:
            found = list(self.notification_log)
        if acs_trans_id is None:
            return found
        return [n for n in found if n.payload.get("details", {}).get("acsTransactionId") == str(acs_trans_id)]

    def _wait(self, found, what: str, timeout: float):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = found()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unexpected(f"{what} within {timeout:.0f}s")
                self._cond.wait(min(left, 0.5))

    def wait_rreq(self, acs_trans_id, timeout: float = 20.0) -> dict:
        """The RReq of this transaction that the DS acknowledged (RRes 01)."""
        found = self._wait(
            lambda: [r for r in self.rreq_log if r.acknowledged and _same_id((r.message or {}).get("acsTransID"), acs_trans_id)],
            f"no acknowledged RReq for {acs_trans_id}", timeout,
        )
        return found[0].message

    def wait_notification(self, acs_trans_id, timeout: float = 20.0) -> IssuerNotification:
        acs_trans_id = str(acs_trans_id)
        found = self._wait(
            lambda: [n for n in self.notification_log if json.loads(n.body).get("details", {}).get("acsTransactionId") == acs_trans_id],
            f"no 3DS notification for {acs_trans_id}", timeout,
        )
        return found[0]

    def wait_cres_post(self, acs_trans_id, timeout: float = 10.0) -> CResPost:
        found = self._wait(
            lambda: [p for p in self.cres_log if _same_id(_cres_of(p).get("acsTransID"), acs_trans_id)],
            f"no final CRes at notificationURL for {acs_trans_id}", timeout,
        )
        return found[0]
