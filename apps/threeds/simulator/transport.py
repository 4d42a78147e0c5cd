"""How the simulator's messages reach the ACS: over real HTTP, or through Django's test client.

Both give back a `Reply`, so `client` does not care which one carries its messages."""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Protocol
from urllib.parse import urlencode, urljoin

import requests

from apps.threeds.simulator.errors import Unreachable


@dataclass
class Reply:
    status_code: int
    headers: dict
    content: bytes
    url: str = ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def content_type(self) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")

    def json(self):
        return json.loads(self.content)


class Transport(Protocol):
    base_url: str

    def post(self, url: str, *, json: dict | None = None, form: dict | None = None, headers: dict | None = None,
             body: str | None = None, content_type: str = "") -> Reply:
        """POST a JSON body, an urlencoded form, or a raw `body` of `content_type` (the app
        channel's JWE) to a path of the ACS or to an absolute URL."""

    def get(self, url: str, *, headers: dict | None = None) -> Reply: ...


class HttpTransport:
    """A running server, with `requests`: the command, and the tests against `live_server`."""

    def __init__(self, base_url: str, *, timeout: float = 30, session: requests.Session | None = None,
                 user_agent: str = ""):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        if user_agent:
            self.session.headers["User-Agent"] = user_agent

    def url(self, url: str) -> str:
        return urljoin(self.base_url + "/", url)

    def _send(self, method: str, url: str, **kwargs) -> Reply:
        url = self.url(url)
        try:
            r = self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise Unreachable(f"could not reach {url}: {type(exc).__name__}: {exc}") from None
        return Reply(r.status_code, dict(r.headers), r.content, url)

    def post(self, url, *, json=None, form=None, headers=None, body=None, content_type="") -> Reply:
        if body is not None:
            return self._send("POST", url, data=body.encode(), headers={**(headers or {}), "Content-Type": content_type})
        return self._send("POST", url, json=json, data=form, headers=headers)

    def get(self, url, *, headers=None) -> Reply:
        return self._send("GET", url, headers=headers)


class DjangoClientTransport:
    """Django's test client, in the test's process and transaction. `around` wraps every
    request, e.g. `lambda: django_capture_on_commit_callbacks(execute=True)` so the work a real
    commit would start (SMS, RReq) runs as it would after the request."""

    base_url = ""

    def __init__(self, client, *, around: Callable[[], ContextManager] | None = None):
        self.client = client
        self.around = around or nullcontext

    def post(self, url, *, json=None, form=None, headers=None, body=None, content_type="") -> Reply:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        with self.around():
            if body is not None:
                r = self.client.post(url, body, content_type=content_type, **extra)
            elif form is not None:
                r = self.client.post(url, urlencode(form), content_type="application/x-www-form-urlencoded", **extra)
            else:
                r = self.client.post(url, json, content_type="application/json", **extra)
        return Reply(r.status_code, dict(r.headers), r.content, url)

    def get(self, url, *, headers=None) -> Reply:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        with self.around():
            r = self.client.get(url, **extra)
        return Reply(r.status_code, dict(r.headers), r.content, url)
