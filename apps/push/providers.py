"""Push provider adapters: one small interface, chosen by PUSH_BACKEND (SPEC §3.4, §5.7).

    provider.send(platform=..., token=..., data={...}) -> PushResult(message_id)

A provider raises TransientPushError (worth another try: 5xx, 429, timeouts, network errors) or
PermanentPushError (never retried: the token is dead or wrong, the request is invalid, the
credentials are refused). `console` and `file` are real adapters for development and demos.

`fcm` speaks FCM HTTP v1 with an OAuth2 access token obtained from a Google service account
(a JWT assertion signed RS256, RFC 7523). It addresses devices registered with the `fcm`
platform; iOS apps that register through the Firebase SDK are `fcm` devices too. Sending to
APNs directly (devices registered as `apns`) is not built: those pushes fail with
`platform_unsupported`, and the OOB flow falls back to SMS.
"""

import base64
import fcntl
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.utils import timezone

from apps.core.logging import scrub
from apps.core.outbound_guard import DestinationNotAllowed, guarded_session
from apps.devices.models import PUSH_FCM
from apps.webhooks.services import retry_after_seconds

CONSOLE, FILE, FCM = "console", "file", "fcm"
EXCERPT_CHARS = 500


class PushError(Exception):
    def __init__(self, message: str, *, code: str, status_code: int | None = None, excerpt: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.excerpt = excerpt


class TransientPushError(PushError):
    def __init__(self, message: str, *, code: str, status_code=None, excerpt: str = "", retry_after: float | None = None):
        super().__init__(message, code=code, status_code=status_code, excerpt=excerpt)
        self.retry_after = retry_after  # the provider's Retry-After, in seconds


class PermanentPushError(PushError):
    pass


@dataclass(frozen=True)
class PushResult:
    message_id: str
    status_code: int | None = None
    excerpt: str = ""


class PushProvider:
    name = ""

    def send(self, *, platform: str, token: str, data: dict, reference: str = "") -> PushResult:
        """Send a data-only push. `reference` (the delivery id) is for local adapters' records."""
        raise NotImplementedError


class ConsolePushProvider(PushProvider):
    """The developer's phone: one line on stdout (deliberately not logging), without the token."""

    name = CONSOLE

    def send(self, *, platform, token, data, reference=""):
        print(f"Push ({platform}) delivery {reference or '-'}: {json.dumps(data, sort_keys=True)}", file=sys.stdout, flush=True)
        return PushResult(message_id=f"console-{uuid.uuid4().hex}")


class FilePushProvider(PushProvider):
    """Appends one JSON line per push, without the token; demos and black-box tests read it."""

    name = FILE

    def __init__(self, path: str | None = None):
        self.path = Path(path or settings.PUSH_FILE_PATH)

    def send(self, *, platform, token, data, reference=""):
        message_id = f"file-{uuid.uuid4().hex}"
        line = json.dumps({
            "delivery_id": reference, "message_id": message_id, "platform": platform, "data": data,
            "sent_at": timezone.now().isoformat(),
        })
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            # Several worker processes append to the same file: one whole line at a time.
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return PushResult(message_id=message_id)


# ---------------------------------------------------------------- FCM HTTP v1

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
# An access token is replaced this long before Google says it expires, never at the last second.
TOKEN_REFRESH_MARGIN = 300

# FCM v1 error codes (google.firebase.fcm.v1.FcmError errorCode, else the google.rpc status).
# https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
PERMANENT_FCM_ERRORS = {
    "UNREGISTERED",  # 404: the app was uninstalled or the token expired
    "INVALID_ARGUMENT",  # 400: a malformed token or message
    "SENDER_ID_MISMATCH",  # 403: the token belongs to another Firebase project
    "THIRD_PARTY_AUTH_ERROR",  # 401: the project's APNs key or web push key is refused
    "PERMISSION_DENIED",  # 403: the service account may not send for this project
    "NOT_FOUND",  # 404: unknown project
}
TRANSIENT_FCM_ERRORS = {"QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL"}


def fcm_message(*, token: str, data: dict) -> dict:
    """A silent, data-only message: the app wakes up and fetches the request itself; nothing is
    shown by the OS and nothing about the payment travels through Google or Apple."""
    return {
        "message": {
            "token": token,
            "data": data,
            "android": {"priority": "HIGH"},
            "apns": {
                "headers": {"apns-push-type": "background", "apns-priority": "5"},
                "payload": {"aps": {"content-available": 1}},
            },
        }
    }


@dataclass(frozen=True)
class ServiceAccount:
    project_id: str
    client_email: str
    private_key_id: str
    private_key: rsa.RSAPrivateKey
    token_uri: str


_accounts: dict[tuple[str, int], ServiceAccount] = {}


def load_service_account(path: str) -> ServiceAccount:
    """The service-account JSON file, parsed once per process and again if the file changes."""
    if not path:
        raise PermanentPushError("FCM_CREDENTIALS_FILE is not set.", code="not_configured")
    try:
        key = (path, os.stat(path).st_mtime_ns)
        if key not in _accounts:
            info = json.loads(Path(path).read_text())
            private_key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
            if not isinstance(private_key, rsa.RSAPrivateKey):
                raise ValueError("not an RSA key")
            _accounts.clear()
            _accounts[key] = ServiceAccount(
                project_id=info.get("project_id", ""), client_email=info["client_email"],
                private_key_id=info.get("private_key_id", ""), private_key=private_key,
                token_uri=info.get("token_uri") or "https://oauth2.googleapis.com/token",
            )
        return _accounts[key]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Never the exception text: a parse error may quote the key.
        raise PermanentPushError(f"FCM credentials unreadable: {exc.__class__.__name__}", code="not_configured") from None


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt_assertion(account: ServiceAccount, *, audience: str, now: int | None = None) -> str:
    """The signed JWT that the token endpoint trades for an access token (RFC 7523)."""
    now = int(time.time()) if now is None else now
    header = {"alg": "RS256", "typ": "JWT", "kid": account.private_key_id}
    claims = {"iss": account.client_email, "scope": FCM_SCOPE, "aud": audience, "iat": now, "exp": now + ASSERTION_LIFETIME}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = account.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


class _AccessTokens:
    """Access tokens per account and token endpoint, shared by the threads of a process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def get(self, account: ServiceAccount, token_uri: str, session: requests.Session, *, stale: str = "") -> str:
        key = (account.client_email, token_uri)
        with self._lock:  # one request for a new token, however many threads need it
            token, refresh_at = self._tokens.get(key, ("", 0.0))
            if token and token != stale and time.monotonic() < refresh_at:
                return token
            token, expires_in = _fetch_access_token(account, token_uri, session)
            margin = min(TOKEN_REFRESH_MARGIN, expires_in / 2)
            self._tokens[key] = (token, time.monotonic() + expires_in - margin)
            return token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


access_tokens = _AccessTokens()


def _fetch_access_token(account: ServiceAccount, token_uri: str, session: requests.Session) -> tuple[str, float]:
    timeout = settings.OUTBOUND_HTTP_TIMEOUT_SECONDS
    assertion = jwt_assertion(account, audience=token_uri)
    try:
        response = session.post(
            token_uri, data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion}, timeout=(timeout, timeout)
        )
    except DestinationNotAllowed as exc:
        raise PermanentPushError(str(exc), code="destination_not_allowed") from None
    except requests.Timeout:
        raise TransientPushError("The OAuth2 token endpoint did not answer in time.", code="auth_timeout") from None
    except requests.RequestException as exc:
        raise TransientPushError(f"OAuth2 token endpoint: {exc.__class__.__name__}", code="auth_network") from None
    excerpt = scrub(response.text[:EXCERPT_CHARS])
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientPushError(
            f"OAuth2 token endpoint: HTTP {response.status_code}", code="auth_unavailable",
            status_code=response.status_code, excerpt=excerpt,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        # invalid_grant, invalid_client, ...: the credentials are refused; trying again will not help.
        error = body.get("error", "") if isinstance(body, dict) else ""
        raise PermanentPushError(
            f"OAuth2 token endpoint refused the service account: HTTP {response.status_code} {error}".strip(),
            code="auth_failed", status_code=response.status_code, excerpt=excerpt,
        )
    try:
        expires_in = float(body.get("expires_in", 3600))
    except (TypeError, ValueError):
        expires_in = 3600.0
    return body["access_token"], max(1.0, expires_in)


_per_thread = threading.local()


def _session() -> requests.Session:
    # Kept per thread (a Session is not made to be shared): connections to Google stay open.
    session = getattr(_per_thread, "session", None)
    if session is None:
        # Connects only to the checked address of the host (SPEC §4: no private destinations).
        session = _per_thread.session = guarded_session()
    return session


def classify_fcm_error(status_code: int, body_text: str, *, retry_after: str | None = None, token: str = "") -> PushError:
    """FCM's answer → transient (try again later) or permanent (never again for this token)."""
    status_name, error_code, message = "", "", ""
    try:
        error = json.loads(body_text).get("error") or {}
        status_name, message = str(error.get("status") or ""), str(error.get("message") or "")
        error_code = next(
            (str(d["errorCode"]) for d in error.get("details") or [] if isinstance(d, dict) and d.get("errorCode")), ""
        )
    except (ValueError, AttributeError):
        pass
    fcm_code = error_code or status_name
    excerpt = scrub(body_text.replace(token, "[token]") if token else body_text)[:EXCERPT_CHARS]
    text = scrub(message.replace(token, "[token]") if token else message)[:200] or f"HTTP {status_code}"
    code = (fcm_code or f"http_{status_code}").lower()[:32]
    if fcm_code in PERMANENT_FCM_ERRORS:
        return PermanentPushError(text, code=code, status_code=status_code, excerpt=excerpt)
    if fcm_code in TRANSIENT_FCM_ERRORS or status_code >= 500 or status_code == 429:
        return TransientPushError(
            text, code=code, status_code=status_code, excerpt=excerpt, retry_after=retry_after_seconds(retry_after)
        )
    return PermanentPushError(text, code=code, status_code=status_code, excerpt=excerpt)


class FcmProvider(PushProvider):
    name = FCM

    def __init__(self, *, credentials_file: str, project_id: str = "", token_uri: str = "", api_base_url: str = ""):
        self.credentials_file = credentials_file
        self.project_id = project_id
        self.token_uri = token_uri
        self.api_base_url = (api_base_url or "https://fcm.googleapis.com").rstrip("/")

    def send(self, *, platform, token, data, reference=""):
        if platform != PUSH_FCM:
            raise PermanentPushError(
                f"The fcm backend cannot reach {platform} devices (APNs-direct is not built).", code="platform_unsupported"
            )
        if not token:
            raise PermanentPushError("The device has no push token.", code="no_push_token")
        account = load_service_account(self.credentials_file)
        project_id = self.project_id or account.project_id
        if not project_id:
            raise PermanentPushError("No FCM project: set FCM_PROJECT_ID.", code="not_configured")
        url = f"{self.api_base_url}/v1/projects/{project_id}/messages:send"
        token_uri = self.token_uri or account.token_uri
        session = _session()
        timeout = settings.OUTBOUND_HTTP_TIMEOUT_SECONDS
        body = fcm_message(token=token, data=data)
        stale = ""
        for _ in range(2):
            access_token = access_tokens.get(account, token_uri, session, stale=stale)
            try:
                response = session.post(
                    url, json=body, headers={"Authorization": f"Bearer {access_token}"}, timeout=(timeout, timeout)
                )
            except DestinationNotAllowed as exc:
                raise PermanentPushError(str(exc), code="destination_not_allowed") from None
            except requests.Timeout:
                raise TransientPushError("FCM did not answer in time.", code="timeout") from None
            except requests.RequestException as exc:
                raise TransientPushError(f"Network error: {exc.__class__.__name__}", code="network") from None
            if response.status_code != 401 or stale:
                break
            stale = access_token  # revoked or expired early: one new token, one more request
        if response.status_code == 200:
            try:
                name = response.json()["name"]
            except (ValueError, KeyError, TypeError):
                # Accepted or not, nobody knows: another try may duplicate a silent push, which the
                # app ignores (it fetches by acsTransId); losing it would cost the OOB challenge.
                raise TransientPushError("FCM answered 200 without a message name.", code="bad_response", status_code=200) from None
            return PushResult(message_id=str(name)[:200], status_code=200)
        raise classify_fcm_error(
            response.status_code, response.text, retry_after=response.headers.get("Retry-After"), token=token
        )


# ---------------------------------------------------------------- which provider


def push_provider() -> PushProvider:
    backend = settings.PUSH_BACKEND
    if backend == CONSOLE:
        return ConsolePushProvider()
    if backend == FILE:
        return FilePushProvider()
    if backend == FCM:
        return FcmProvider(
            credentials_file=settings.FCM_CREDENTIALS_FILE,
            project_id=settings.FCM_PROJECT_ID,
            token_uri=settings.FCM_TOKEN_URI,
            api_base_url=settings.FCM_API_BASE_URL,
        )
    raise PermanentPushError(f"Unknown PUSH_BACKEND {backend!r}.", code="not_configured")
