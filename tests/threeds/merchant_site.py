"""A 3DS Requestor's checkout on its own origin, for the browser challenge tests, and a stub of
the DS's RReq endpoint.

`MerchantSite` serves, on http://127.0.0.1:<port> (another site than the ACS at
http://localhost:<port>), a checkout page with an iframe and a form that posts the CReq into it
(target = the iframe's name), as a 3DS Server's page does; and the notificationURL that receives
the final CRes from the ACS page inside that iframe. Both run in a ThreadingHTTPServer in a
thread of the pytest process; tests read back what arrived.

`DirectoryServerStub` answers RReqs with an RRes (resultsStatus 01), so a finished challenge's
RReq goes somewhere real and tests can look at it; it is the simulator's DS.
"""

from __future__ import annotations

import html
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from apps.threeds.simulator.endpoints import Endpoints
from apps.threeds.simulator.messages import b64url_decode, b64url_encode

WINDOW_PIXELS = {"01": (250, 400), "02": (390, 400), "03": (500, 600), "04": (600, 400), "05": (800, 700)}


creq_encode = b64url_encode  # the names the browser-challenge tests use
b64url_json = b64url_decode


class _Server:
    host = "127.0.0.1"

    def __init__(self):
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server._handle(self, "GET")

            def do_POST(self):
                server._handle(self, "POST")

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @staticmethod
    def _reply(handler, status: int, body: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        handler.wfile.write(body)

    @staticmethod
    def _body(handler) -> bytes:
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))

    def _handle(self, handler, method: str) -> None:
        raise NotImplementedError


@dataclass
class Notification:
    """One POST to the notificationURL: what the ACS page handed back."""

    form: dict
    origin: str
    received_at: float = field(default_factory=time.monotonic)

    @property
    def cres(self) -> dict:
        return b64url_json(self.form["cres"])


class MerchantSite(_Server):
    def __init__(self):
        super().__init__()
        self._pages: dict[str, str] = {}
        self._lock = threading.Condition()
        self.notifications: list[Notification] = []

    @property
    def notification_url(self) -> str:
        return f"{self.origin}/3ds/notify"

    def checkout(self, *, acs_url: str, creq: dict, session_data: str | None = None) -> str:
        """A checkout page that posts `creq` into its challenge iframe on load; returns its URL."""
        width, height = WINDOW_PIXELS.get(creq.get("challengeWindowSize"), WINDOW_PIXELS["05"])
        session_field = (
            f'<input type="hidden" name="threeDSSessionData" value="{html.escape(session_data)}">' if session_data is not None else ""
        )
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tokyo Books – checkout</title></head>
<body>
<h1>Tokyo Books</h1>
<p>Your bank is checking this payment.</p>
<iframe name="challenge" id="challenge" width="{width}" height="{height}" title="3-D Secure"></iframe>
<form id="creq-form" method="post" action="{html.escape(acs_url)}" target="challenge">
<input type="hidden" name="creq" value="{html.escape(creq_encode(creq))}">
{session_field}
<button type="submit">Continue to your bank</button>
</form>
<script>document.getElementById("creq-form").submit();</script>
</body></html>"""
        key = uuid.uuid4().hex
        self._pages[key] = page
        return f"{self.origin}/checkout/{key}"

    def method_page(self, *, method_url: str, method_data: str) -> str:
        """A checkout page that loads the ACS's 3DS Method page (SPEC §3.8) in a hidden iframe, as
        a 3DS Server does before the AReq; returns its URL. The page's notification arrives at
        `notification_url` like a CRes, with `threeDSMethodData` instead of `cres`."""
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tokyo Books – checkout</title></head>
<body>
<h1>Tokyo Books</h1>
<iframe name="method" id="method" style="display:none" title="3DS Method"></iframe>
<form id="method-form" method="post" action="{html.escape(method_url)}" target="method">
<input type="hidden" name="threeDSMethodData" value="{html.escape(method_data)}">
</form>
<script>document.getElementById("method-form").submit();</script>
</body></html>"""
        key = uuid.uuid4().hex
        self._pages[key] = page
        return f"{self.origin}/checkout/{key}"

    def wait_for_notification(self, timeout: float = 15.0) -> Notification:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self.notifications:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no POST reached the notificationURL within {timeout}s")
                self._lock.wait(left)
            return self.notifications[-1]

    def _handle(self, handler, method: str) -> None:
        path = urlsplit(handler.path).path
        if method == "GET" and path.startswith("/checkout/"):
            page = self._pages.get(path.rsplit("/", 1)[-1])
            if page is None:
                return self._reply(handler, 404, b"not found", "text/plain")
            return self._reply(handler, 200, page.encode(), "text/html; charset=utf-8")
        if method == "POST" and path == "/3ds/notify":
            form = {k: v[0] for k, v in parse_qs(self._body(handler).decode(), keep_blank_values=True).items()}
            with self._lock:
                self.notifications.append(Notification(form=form, origin=handler.headers.get("Origin", "")))
                self._lock.notify_all()
            # What a 3DS Server's notification page does: tell the parent page it is over.
            status = html.escape(b64url_json(form["cres"]).get("transStatus", "?")) if "cres" in form else "?"
            body = f'<!doctype html><html><body><p id="done">Challenge finished: {status}</p></body></html>'
            return self._reply(handler, 200, body.encode(), "text/html; charset=utf-8")
        return self._reply(handler, 404, b"not found", "text/plain")


class DirectoryServerStub:
    """The simulator's DS (apps.threeds.simulator.endpoints: RRes 01 at its dsURL), under the
    names the browser tests use."""

    def __init__(self):
        self.endpoints = Endpoints()

    def start(self) -> DirectoryServerStub:
        self.endpoints.start()
        return self

    def stop(self) -> None:
        self.endpoints.stop()

    @property
    def rreq_url(self) -> str:
        return self.endpoints.ds_url

    @property
    def rreqs(self) -> list[dict]:
        """Every RReq received, in order."""
        return [r.message for r in self.endpoints.rreqs()]
