"""SMS provider adapters: one small interface, chosen per issuer and role (SPEC §3.5, §5.7).

    provider.send(to=..., body=..., sender=..., status_callback=...) -> SendResult

A provider raises TransientSmsError (worth another try) or PermanentSmsError (this provider will
never send this message). `console` and `file` are real adapters for development and demos.
"""

import fcntl
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

import requests
import urllib3
# The twilio client imports its Api domain (80+ ms of modules) on first use: import it when the
# worker starts instead, not in the first SMS the worker sends.
import twilio.rest.api  # noqa: F401
from django.conf import settings
from django.utils import timezone
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from apps.core import model_sql
from apps.core.logging import scrub
from apps.core.outbound_guard import DestinationNotAllowed, GuardedAdapter, GuardedPoolManager
from apps.sms.models import CONSOLE, FALLBACK, FILE, PRIMARY, TWILIO, SmsProviderConfig

# Errors about the destination itself: no provider can send there, so the delivery fails at
# once. Other permanent errors (region not enabled, unroutable sender, bad credentials) are the
# provider's own: the fallback provider may still succeed.
RECIPIENT_ERROR_CODES = {
    21211,  # invalid 'To' phone number
    21614,  # 'To' is not a mobile number
    21635,  # 'To' cannot be reached by SMS (landline)
    21610,  # recipient unsubscribed (STOP)
}


class SmsError(Exception):
    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code


class TransientSmsError(SmsError):
    pass


class PermanentSmsError(SmsError):
    def __init__(self, message: str, *, code: str = "", recipient: bool = False):
        super().__init__(message, code=code)
        self.recipient = recipient  # the number is the problem: no other provider will do better


@dataclass(frozen=True)
class SendResult:
    message_id: str
    status: str


class SmsProvider:
    name = ""
    account_sid = ""
    auth_token = ""

    def send(self, *, to: str, body: str, sender: str, status_callback: str = "", reference: str = "") -> SendResult:
        raise NotImplementedError


class ConsoleProvider(SmsProvider):
    """The developer's phone: the message goes to stdout, deliberately not through logging."""

    name = CONSOLE

    def send(self, *, to, body, sender, status_callback="", reference=""):
        print(f"SMS to {to} from {sender or '-'}: {body}", file=sys.stdout, flush=True)
        return SendResult(message_id=f"console-{uuid.uuid4().hex}", status="sent")


class FileProvider(SmsProvider):
    """Appends one JSON line per message; demos and black-box tests read the codes from it."""

    name = FILE

    def __init__(self, path: str | None = None):
        self.path = Path(path or settings.SMS_FILE_PATH)

    def send(self, *, to, body, sender, status_callback="", reference=""):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {"delivery_id": reference, "to": to, "from": sender, "body": body, "sent_at": timezone.now().isoformat()},
            ensure_ascii=False,
        )
        with open(self.path, "a", encoding="utf-8") as fh:
            # Several worker processes append to the same file: one whole line at a time.
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return SendResult(message_id=f"file-{uuid.uuid4().hex}", status="sent")


TWILIO_API_URL = "https://api.twilio.com"

_per_thread = threading.local()


def _twilio_client(account_sid: str, auth_token: str, base_url: str, timeout: float) -> Client:
    """One client per account, process and thread: its HTTP connection pool keeps connections
    to Twilio open between messages instead of a new TCP and TLS handshake for each SMS. Per
    thread, so that no two sends ever share a connection (the sms queue may run on a threads
    pool)."""
    clients = getattr(_per_thread, "clients", None)
    if clients is None:
        clients = _per_thread.clients = lru_cache(maxsize=32)(_new_twilio_client)
    return clients(account_sid, auth_token, base_url, timeout)


def _new_twilio_client(account_sid: str, auth_token: str, base_url: str, timeout: float) -> Client:
    url = base_url or TWILIO_API_URL
    # Proxy and CA-bundle variables cannot change while the process runs: read them once.
    # (requests would scan the whole environment on every request: 0.6 ms of CPU per SMS with
    # 40 variables, 1.6 ms with 140.)
    proxies = requests.utils.get_environ_proxies(url)
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or ""
    if proxies:
        # Through a proxy: the twilio client's own transport (requests), which knows every way
        # of reaching one.
        http = TwilioHttpClient(timeout=timeout)
        http.session.proxies = proxies
        http.session.verify = ca_bundle or True
        http.session.trust_env = False
        http.session.mount("https://", GuardedAdapter())
        http.session.mount("http://", GuardedAdapter())
    else:
        http = Urllib3HttpClient(timeout=timeout, ca_bundle=ca_bundle)
    client = Client(account_sid, auth_token, http_client=http)
    if base_url:
        # The Api domain builds every Messages URL from base_url (SPEC §5.7: test doubles).
        client.api.base_url = base_url.rstrip("/")
    return client


class Urllib3HttpClient(HttpClient):
    """The twilio client's HTTP transport on urllib3 alone (what requests runs on), for direct
    connections: the same request on the wire, a third of the CPU (0.25 against 0.65 ms per
    SMS, measured in docs/BENCHMARKS.md). The twilio client still builds every request and
    reads every answer, errors included.

    Like TwilioHttpClient: one timeout for connecting and for each read, so that a hung
    provider costs one bounded try; no retries and no redirects, so that every try is exactly
    one POST; certificates checked against the same bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE
    or certifi's). Unlike it, it keeps no copy of the last request (the body holds the OTP) and
    logs nothing (the twilio logger is kept to warnings anyway)."""

    def __init__(self, *, timeout: float, ca_bundle: str = ""):
        super().__init__(logger=None, is_async=False, timeout=timeout)
        bundle = ca_bundle or requests.certs.where()
        where = {"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}
        # Connects only to the checked address of the host (SPEC §4: no private destinations).
        self.pool = GuardedPoolManager(num_pools=4, maxsize=1, block=False, retries=False, cert_reqs="CERT_REQUIRED", **where)

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False):
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        headers = {**(headers or {}), "Accept-Encoding": "gzip, deflate"}
        if auth:
            headers["Authorization"] = urllib3.util.make_headers(basic_auth=f"{auth[0]}:{auth[1]}")["authorization"]
        if params:
            url = f"{url}?{urlencode(params, doseq=True)}"
        body = None
        if data is not None:
            if headers.get("Content-Type") in ("application/json", "application/scim+json"):
                body = json.dumps(data).encode()
            else:
                body = urlencode(data, doseq=True).encode()
        answer = self.pool.urlopen(
            method.upper(), url, body=body, headers=headers, retries=False, redirect=allow_redirects,
            timeout=urllib3.Timeout(connect=timeout, read=timeout), preload_content=True,
        )
        return Response(answer.status, answer.data.decode(_charset(answer.headers), "replace"), answer.headers)


def _charset(headers) -> str:
    for part in (headers.get("Content-Type") or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"  # JSON's


class TwilioProvider(SmsProvider):
    name = TWILIO

    def __init__(self, *, account_sid: str, auth_token: str, from_number: str = "", messaging_service_sid: str = ""):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid

    def _client(self) -> Client:
        return _twilio_client(self.account_sid, self.auth_token, settings.TWILIO_API_BASE_URL, settings.OUTBOUND_HTTP_TIMEOUT_SECONDS)

    def send(self, *, to, body, sender, status_callback="", reference=""):
        if not self.account_sid or not self.auth_token:
            raise PermanentSmsError("Twilio account is not configured.", code="not_configured")
        from_ = sender or self.from_number
        if not from_ and not self.messaging_service_sid:
            raise PermanentSmsError("No sender: set a From number or a Messaging Service.", code="no_sender")
        kwargs = {"to": to, "body": body}
        if from_:
            kwargs["from_"] = from_
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self._client().messages.create(**kwargs)
        except TwilioRestException as exc:
            raise classify_twilio_error(exc.status, exc.code, exc.msg, to=to) from None
        except DestinationNotAllowed as exc:
            # The configured API address is refused: no try will reach it (the fallback may).
            raise PermanentSmsError(str(exc), code="destination_not_allowed") from None
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise TransientSmsError("Twilio did not answer in time.", code="timeout") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientSmsError(f"Network error: {exc.__class__.__name__}", code="network") from None
        except (TwilioException, ValueError) as exc:
            # e.g. a 2xx whose body is not the expected JSON: the outcome is unknown.
            raise TransientSmsError(f"Unexpected answer: {exc.__class__.__name__}", code="bad_response") from None
        return SendResult(message_id=message.sid or "", status=message.status or "queued")


def classify_twilio_error(status: int, code: int | None, message: str = "", *, to: str = "") -> SmsError:
    """HTTP 5xx and 429 are worth another try; any other 4xx is not (SPEC §3.5)."""
    text = scrub((message or "").replace(to, "[to]") if to else (message or ""))[:200]
    label = str(code or f"http_{status}")
    if status >= 500 or status == 429:
        return TransientSmsError(text or f"HTTP {status}", code=label)
    return PermanentSmsError(text or f"HTTP {status}", code=label, recipient=code in RECIPIENT_ERROR_CODES)


# ---------------------------------------------------------------- which provider, per issuer


def provider_from_settings(role: str) -> SmsProvider | None:
    """The provider the settings name for this role, or None."""
    if role == PRIMARY:
        backend, prefix = settings.SMS_BACKEND, "TWILIO_"
    else:
        backend, prefix = settings.SMS_FALLBACK_BACKEND, "TWILIO_FALLBACK_"
    if backend == TWILIO:
        return TwilioProvider(
            account_sid=getattr(settings, f"{prefix}ACCOUNT_SID"),
            auth_token=getattr(settings, f"{prefix}AUTH_TOKEN"),
            from_number=getattr(settings, f"{prefix}FROM"),
            messaging_service_sid=getattr(settings, f"{prefix}MESSAGING_SERVICE_SID"),
        )
    return _simple(backend)


def _simple(backend: str) -> SmsProvider | None:
    if backend == CONSOLE:
        return ConsoleProvider()
    if backend == FILE:
        return FileProvider()
    return None  # unset: no such provider (the usual case for the fallback)


def provider_from_config(config: SmsProviderConfig) -> SmsProvider | None:
    """The provider an issuer's row names, or None (a backend this code does not know)."""
    if config.backend == TWILIO:
        return TwilioProvider(
            account_sid=config.account_sid,
            auth_token=config.get_auth_token(),
            from_number=config.from_number,
            messaging_service_sid=config.messaging_service_sid,
        )
    return _simple(config.backend)


def provider_for(*, issuer_id, role: str) -> SmsProvider | None:
    """The issuer's active row for this role, else the settings."""
    config = SmsProviderConfig.objects.filter(issuer_id=issuer_id, role=role, is_active=True).first()
    return provider_from_config(config) if config is not None else provider_from_settings(role)


def providers_for(*, issuer_id) -> list[tuple[str, SmsProvider]]:
    """(role, provider) in the order they are tried."""
    # Read on every try (a changed token applies at once), with a statement built once.
    return provider_chain(model_sql.select(SmsProviderConfig, issuer_id=issuer_id, is_active=True))


def provider_chain(configs: Iterable[SmsProviderConfig]) -> list[tuple[str, SmsProvider]]:
    """(role, provider) in the order they are tried, from an issuer's active rows (at most one
    per role); a role without a row uses the settings. The sender passes rows it read together
    with the delivery, so choosing the providers costs no query of its own."""
    by_role = {config.role: config for config in configs}
    chain = []
    for role in (PRIMARY, FALLBACK):
        provider = provider_from_config(by_role[role]) if role in by_role else provider_from_settings(role)
        if provider is not None:
            chain.append((role, provider))
    return chain
