"""A fake Firebase Cloud Messaging HTTP v1 API and Google OAuth2 token endpoint, for tests.

It runs in the pytest process (a ThreadingHTTPServer in a thread); the Celery worker reaches it
through FCM_API_BASE_URL and FCM_TOKEN_URI. It owns a test service account (an RSA key made at
start, written as a Google service-account JSON file) and checks what a real client must do:

- POST /token: grant_type jwt-bearer with an RS256 assertion signed by the service account's
  key (kid, iss, scope, aud, iat/exp checked) → a short-lived access token;
- POST /v1/projects/{project}/messages:send: `Authorization: Bearer <that access token>` and a
  body of exactly the shape the push service promises (a silent data-only message that names
  the pending request and nothing else).

Anything off lands in `violations`. Tests program answers per push token:
`program(token, "500", "ok")`; behaviours:

- "ok": 200 {"name": "projects/<p>/messages/<id>"}
- "500" INTERNAL, "503" UNAVAILABLE, "429" QUOTA_EXCEEDED (Retry-After: `retry_after`; "429:N"
  for N seconds), "unregistered" (404), "invalid_argument" (400), "sender_id_mismatch" (403),
  "401" (UNAUTHENTICATED, as when an access token was revoked)
- "hang": wait `hang_seconds` (longer than the client timeout), then close without answering
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PROJECT_ID = "issuer-portal-test"
CLIENT_EMAIL = f"fcm-sender@{PROJECT_ID}.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_SEND_RE = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")

# (HTTP status, google.rpc status, FcmError errorCode or None, message) as FCM answers them.
ERRORS = {
    "500": (500, "INTERNAL", "INTERNAL", "Internal error encountered."),
    "503": (503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
    "429": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Messages'."),
    "unregistered": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    "invalid_argument": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
    "sender_id_mismatch": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
    "401": (401, "UNAUTHENTICATED", None, "Request had invalid authentication credentials."),
}

APNS = {"headers": {"apns-push-type": "background", "apns-priority": "5"}, "payload": {"aps": {"content-available": 1}}}


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def fcm_error(behaviour: str) -> tuple[int, dict]:
    status, rpc_status, error_code, message = ERRORS[behaviour]
    error = {"code": status, "message": message, "status": rpc_status}
    if error_code:
        error["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}]
    return status, {"error": error}


def message_shape_problems(body) -> list[str]:
    """What the push service promises: exactly this message, and nothing else in it."""
    if not isinstance(body, dict) or set(body) != {"message"}:
        return [f"body keys {sorted(body) if isinstance(body, dict) else type(body).__name__}"]
    message = body["message"]
    if not isinstance(message, dict):
        return ["message is not an object"]
    problems = []
    if set(message) != {"token", "data", "android", "apns"}:
        problems.append(f"message keys {sorted(message)}")
    if not isinstance(message.get("token"), str) or not message.get("token"):
        problems.append("message.token missing")
    data = message.get("data")
    if not isinstance(data, dict) or set(data) != {"type", "acsTransId"}:
        problems.append(f"data keys {sorted(data) if isinstance(data, dict) else data!r}")
    else:
        if data["type"] != "3ds_authn_request":
            problems.append(f"data.type {data['type']!r}")
        try:
            uuid.UUID(data["acsTransId"])
        except (TypeError, ValueError, AttributeError):
            problems.append(f"data.acsTransId {data['acsTransId']!r}")
        if not all(isinstance(v, str) for v in data.values()):
            problems.append("data values must be strings")
    if message.get("android") != {"priority": "HIGH"}:
        problems.append(f"android {message.get('android')!r}")
    if message.get("apns") != APNS:
        problems.append(f"apns {message.get('apns')!r}")
    return problems


@dataclass
class ReceivedMessage:
    push_token: str
    body: dict
    raw: str
    behaviour: str
    outcome: str = "pending"  # accepted | error <status> | hung | rejected
    name: str = ""
    received_at: float = field(default_factory=time.monotonic)

    @property
    def data(self) -> dict:
        return self.body.get("message", {}).get("data", {})


@dataclass
class TokenRequest:
    outcome: str  # issued | refused <why>
    received_at: float = field(default_factory=time.monotonic)


class FakeFcm:
    def __init__(self, directory: Path, *, token_lifetime: int = 3600, hang_seconds: float = 2.5, retry_after: str = "1"):
        self.token_lifetime = token_lifetime
        self.hang_seconds = hang_seconds
        self.retry_after = retry_after
        self.key_id = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._key.public_key()
        self.credentials_path = Path(directory) / "service-account.json"
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._scripts: dict[str, list[str]] = {}
        self._token_script: list[str] = []
        self._messages: list[ReceivedMessage] = []
        self._token_requests: list[TokenRequest] = []
        self._access_tokens: dict[str, float] = {}  # token -> expiry (time.time())
        self.violations: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None

    # -------------------------------------------------- lifecycle

    def start(self) -> "FakeFcm":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="fake-fcm", daemon=True).start()
        self.write_credentials(self.credentials_path)
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def write_credentials(self, path: Path, *, key: rsa.RSAPrivateKey | None = None, token_uri: str = "") -> Path:
        """A service-account key file as the Google Cloud console makes it. The token_uri is
        Google's unless given; FCM_TOKEN_URI points the client here instead."""
        pem = (key or self._key).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        path.write_text(json.dumps({
            "type": "service_account",
            "project_id": PROJECT_ID,
            "private_key_id": self.key_id,
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri or "https://oauth2.googleapis.com/token",
        }))
        return path

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._token_script.clear()
            self._messages.clear()
            self._token_requests.clear()
            self.violations.clear()

    # -------------------------------------------------- programming and reading back

    def program(self, push_token: str, *behaviours: str) -> None:
        with self._lock:
            self._scripts.setdefault(push_token, []).extend(behaviours)

    def program_token_endpoint(self, *behaviours: str) -> None:
        """"ok", "500", or "invalid_grant" for the next token requests."""
        with self._lock:
            self._token_script.extend(behaviours)

    def revoke_access_tokens(self) -> None:
        with self._lock:
            self._access_tokens.clear()

    def messages(self, *, push_token: str | None = None) -> list[ReceivedMessage]:
        with self._lock:
            return [m for m in self._messages if push_token is None or m.push_token == push_token]

    def accepted(self, **filters) -> list[ReceivedMessage]:
        return [m for m in self.messages(**filters) if m.outcome == "accepted"]

    def token_requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._token_requests)

    def wait_for_messages(self, count: int, *, push_token: str | None = None, timeout: float = 20.0) -> list[ReceivedMessage]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self._messages if push_token is None or m.push_token == push_token]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake FCM got {len(found)} of {count} messages in {timeout}s")
                self._cond.wait(left)

    # -------------------------------------------------- settings for the code under test

    def django_settings(self) -> dict:
        return {
            "PUSH_BACKEND": "fcm",
            "FCM_CREDENTIALS_FILE": str(self.credentials_path),
            "FCM_PROJECT_ID": "",
            "FCM_TOKEN_URI": self.token_uri,
            "FCM_API_BASE_URL": self.url,
            "PUSH_MAX_TRIES": 3,
        }

    def env(self) -> dict[str, str]:
        """Environment for a worker process (strings), the same values as `django_settings`."""
        return {name: str(value) for name, value in self.django_settings().items()}

    # -------------------------------------------------- used by the handler

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _token_request(self, form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            behaviour = self._token_script.pop(0) if self._token_script else "ok"
        problem = self._assertion_problem(form)
        if problem:
            self._violation(f"token request: {problem}")
            behaviour = "invalid_grant"
        if behaviour == "500":
            outcome, answer = "refused 500", (500, {"error": "internal_failure"})
        elif behaviour == "invalid_grant":
            outcome = f"refused {problem or 'programmed'}"
            answer = (400, {"error": "invalid_grant", "error_description": problem or "Invalid JWT Signature."})
        else:
            token = "ya29.fake-" + secrets.token_urlsafe(24)
            with self._lock:
                self._access_tokens[token] = time.time() + self.token_lifetime
            outcome = "issued"
            answer = (200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})
        with self._lock:
            self._token_requests.append(TokenRequest(outcome=outcome))
        return answer

    def _assertion_problem(self, form: dict[str, str]) -> str:
        if form.get("grant_type") != JWT_BEARER:
            return f"grant_type {form.get('grant_type')!r}"
        parts = (form.get("assertion") or "").split(".")
        if len(parts) != 3:
            return "assertion is not a JWT"
        try:
            header, claims = json.loads(_b64url_decode(parts[0])), json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except ValueError:
            return "assertion does not decode"
        if header.get("alg") != "RS256" or header.get("kid") != self.key_id:
            return f"header {header}"
        try:
            self.public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "bad signature"
        now = time.time()
        if claims.get("iss") != CLIENT_EMAIL:
            return f"iss {claims.get('iss')!r}"
        if SCOPE not in str(claims.get("scope", "")).split():
            return f"scope {claims.get('scope')!r}"
        if claims.get("aud") != self.token_uri:
            return f"aud {claims.get('aud')!r}"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60 or exp <= now or exp - iat > 3600:
            return f"iat/exp {iat}/{exp}"
        return ""

    def _authorised(self, header: str) -> bool:
        if not header.startswith("Bearer "):
            self._violation(f"Authorization header {header[:16]!r}…")
            return False
        with self._lock:
            expiry = self._access_tokens.get(header[7:])
        return expiry is not None and expiry > time.time()

    def _record(self, body: dict, raw: str) -> ReceivedMessage:
        push_token = str((body.get("message") or {}).get("token") or "") if isinstance(body, dict) else ""
        with self._lock:
            script = self._scripts.get(push_token) or []
            behaviour = script.pop(0) if script else "ok"
            received = ReceivedMessage(push_token=push_token, body=body, raw=raw, behaviour=behaviour)
            self._messages.append(received)
            self._cond.notify_all()
            return received


class _Handler(BaseHTTPRequestHandler):
    fake: FakeFcm
    server_version = "FakeFCM/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive, like Google's front ends

    def log_message(self, format, *args):  # quiet: tests read what was received instead
        pass

    def _send_json(self, status: int, body: dict, headers: dict | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> str:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()

    def do_GET(self):
        self._send_json(404, fcm_error("unregistered")[1])

    def do_POST(self):
        fake = self.fake
        path = urlparse(self.path).path
        raw = self._body()
        if path == "/token":
            form = {name: values[-1] for name, values in parse_qs(raw, keep_blank_values=True).items()}
            return self._send_json(*fake._token_request(form))
        match = _SEND_RE.match(path)
        if match is None:
            fake._violation(f"POST to an unknown path {self.path}")
            return self._send_json(*fcm_error("unregistered"))
        if not fake._authorised(self.headers.get("Authorization") or ""):
            return self._send_json(*fcm_error("401"))
        if match["project"] != PROJECT_ID:
            fake._violation(f"project {match['project']!r}")
            return self._send_json(*fcm_error("unregistered"))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        problems = message_shape_problems(body)
        received = fake._record(body if isinstance(body, dict) else {}, raw)
        if problems:
            for problem in problems:
                fake._violation(f"message: {problem}")
            received.outcome = "rejected"
            return self._send_json(*fcm_error("invalid_argument"))

        behaviour = received.behaviour
        if behaviour == "ok":
            received.name = f"projects/{PROJECT_ID}/messages/0:{secrets.token_hex(8)}%{secrets.token_hex(8)}"
            received.outcome = "accepted"
            self._send_json(200, {"name": received.name})
        elif behaviour.partition(":")[0] in ERRORS:
            kind, _, seconds = behaviour.partition(":")
            status, body = fcm_error(kind)
            received.outcome = f"error {status}"
            headers = {"Retry-After": seconds or fake.retry_after} if kind == "429" else {}
            self._send_json(status, body, headers)
        elif behaviour == "hang":
            received.outcome = "hung"
            time.sleep(fake.hang_seconds)
            self.close_connection = True
        else:
            raise ValueError(f"unknown fake FCM behaviour {behaviour!r}")
