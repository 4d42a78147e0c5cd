"""A fake Twilio Messages API for tests, for the real `twilio` client to talk to.

It runs in the pytest process (a ThreadingHTTPServer in a thread); the Celery worker process
reaches it through TWILIO_API_BASE_URL. Tests program what it answers, per account, and read
back every request it received, so they can count the SMS that were really accepted.

Requests and answers are checked against Twilio's own OpenAPI description of the 2010 API (the
Messages part of it, vendored with its licence under tests/fakes/reference/twilio/; see
trim_twilio.py there); anything that breaks it lands in `violations`.
"""

from __future__ import annotations

import base64
import copy
import email.utils
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jsonschema

SPEC_PATH = Path(__file__).resolve().parent / "reference" / "twilio" / "twilio_api_v2010_messages.json"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
_MESSAGES_RE = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")

PRIMARY_SID = "AC" + "a1" * 16
PRIMARY_TOKEN = "primary-auth-token-0123456789abcdef"
FALLBACK_SID = "AC" + "b2" * 16
FALLBACK_TOKEN = "fallback-auth-token-0123456789abcdef"
PRIMARY_FROM = "+15005550006"
FALLBACK_FROM = "+15005550007"

# What Twilio says for the errors tests ask for (https://www.twilio.com/docs/api/errors).
ERROR_MESSAGES = {
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
    21635: "The 'To' number cannot be reached by SMS: it is a landline.",
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
}
_HTTP_ERRORS = {"500": (500, 20500), "503": (503, 20503), "429": (429, 20429)}


# ---------------------------------------------------------------- the OpenAPI description


def _to_json_schema(node, components: dict):
    """OpenAPI 3.0 schema → JSON Schema: $refs inlined, `nullable` turned into a null type."""
    if isinstance(node, list):
        return [_to_json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        resolved = _to_json_schema(components[node["$ref"].rsplit("/", 1)[-1]], components)
        return {"anyOf": [resolved, {"type": "null"}]} if node.get("nullable") else resolved
    out = {k: _to_json_schema(v, components) for k, v in node.items() if k not in ("nullable", "description")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()

    @checker.checks("phone-number")
    def phone_number(value) -> bool:
        # E.164; Twilio also takes an alphanumeric sender id in From.
        return not isinstance(value, str) or bool(re.fullmatch(r"\+[1-9][0-9]{6,14}|[A-Za-z0-9 ]{1,11}", value))

    @checker.checks("uri")
    def uri(value) -> bool:
        parsed = urlparse(value) if isinstance(value, str) else None
        return parsed is None or (parsed.scheme in ("http", "https") and bool(parsed.netloc))

    @checker.checks("date-time-rfc-2822")
    def rfc2822(value) -> bool:
        if not isinstance(value, str):
            return True
        try:
            return email.utils.parsedate_to_datetime(value) is not None
        except (TypeError, ValueError):
            return False

    return checker


class TwilioOpenApi:
    """The parts of Twilio's description that the Messages create call needs."""

    def __init__(self, path: Path = SPEC_PATH):
        document = json.loads(path.read_text())
        components = document["components"]["schemas"]
        operation = document["paths"][MESSAGES_PATH]["post"]
        self.account_sid_schema = _to_json_schema(
            next(p["schema"] for p in operation["parameters"] if p["name"] == "AccountSid"), components
        )
        self.form_schema = _to_json_schema(
            operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"], components
        )
        self.message_schema = _to_json_schema(
            operation["responses"]["201"]["content"]["application/json"]["schema"], components
        )
        self.security = document["components"]["securitySchemes"]
        self.checker = _format_checker()

    def _errors(self, instance, schema) -> list[str]:
        validator = jsonschema.Draft7Validator(schema, format_checker=self.checker)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(instance)]

    def request_problems(self, account_sid: str, form: dict[str, list[str]]) -> list[str]:
        problems = [f"AccountSid {e}" for e in self._errors(account_sid, self.account_sid_schema)]
        properties = self.form_schema["properties"]
        typed = {}
        for name, values in form.items():
            prop = properties.get(name)
            if prop is None:
                problems.append(f"{name}: not a parameter of Create Message")
                continue
            kind = prop.get("type")
            if kind == "array":
                typed[name] = values
            elif kind == "boolean":
                typed[name] = {"true": True, "false": False}.get(values[-1].lower(), values[-1])
            elif kind in ("integer", "number"):
                try:
                    typed[name] = int(values[-1]) if kind == "integer" else float(values[-1])
                except ValueError:
                    typed[name] = values[-1]
            else:
                typed[name] = values[-1]
        problems += self._errors(typed, self.form_schema)
        # Rules Twilio states in prose rather than in the schema.
        if not ({"From", "MessagingServiceSid"} & typed.keys()):
            problems.append("From or MessagingServiceSid is required")
        if not ({"Body", "MediaUrl", "ContentSid"} & typed.keys()):
            problems.append("Body, MediaUrl or ContentSid is required")
        return problems

    def response_problems(self, message: dict) -> list[str]:
        return self._errors(message, self.message_schema)


# ---------------------------------------------------------------- the server


@dataclass
class ReceivedRequest:
    account_sid: str
    form: dict[str, str]
    behaviour: object
    outcome: str = "pending"  # accepted | error <http status> | hung | held | dropped | rejected
    sid: str = ""
    received_at: float = field(default_factory=time.monotonic)

    @property
    def to(self) -> str:
        return self.form.get("To", "")

    @property
    def body(self) -> str:
        return self.form.get("Body", "")

    @property
    def status_callback(self) -> str:
        return self.form.get("StatusCallback", "")


class FakeTwilio:
    """Programmable per account: `program(sid, "500", "hang", "ok")` answers that account's next
    requests in order, then "ok". Behaviours:

    - "ok": 201 with a message resource (status queued)
    - "500" / "503" / "429": that HTTP status with a Twilio error body
    - a Twilio error code (21211, 21614, ...): 400 with {"code", "message", "more_info", "status"}
    - "hang": wait `hang_seconds` (longer than the client timeout), then close without answering
    - "hold": wait until `release()` is called (or 120 s), then close without answering
    - "drop": close the connection at once
    """

    def __init__(self, *, accounts: dict[str, str] | None = None, hang_seconds: float = 2.5):
        self.accounts = accounts or {PRIMARY_SID: PRIMARY_TOKEN, FALLBACK_SID: FALLBACK_TOKEN}
        self.hang_seconds = hang_seconds
        # Vendored with the tests: the checks never quietly switch off.
        self.openapi = TwilioOpenApi()
        self._lock = threading.Lock()
        self._received_cond = threading.Condition(self._lock)
        self._scripts: dict[str, list] = {}
        self._requests: list[ReceivedRequest] = []
        self._release = threading.Event()
        self.violations: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None

    # -------------------------------------------------- lifecycle

    def start(self) -> "FakeTwilio":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="fake-twilio", daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._requests.clear()
            self.violations.clear()
        self._release.set()  # let any held request from an earlier test go
        self._release = threading.Event()

    # -------------------------------------------------- programming and reading back

    def program(self, account_sid: str, *behaviours) -> None:
        with self._lock:
            self._scripts.setdefault(account_sid, []).extend(behaviours)

    def release(self) -> None:
        self._release.set()

    def requests(self, *, account_sid: str | None = None, to: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [
                r for r in self._requests
                if (account_sid is None or r.account_sid == account_sid) and (to is None or r.to == to)
            ]

    def accepted(self, **filters) -> list[ReceivedRequest]:
        return [r for r in self.requests(**filters) if r.outcome == "accepted"]

    def wait_for_requests(self, count: int, *, timeout: float = 20.0, **filters) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        with self._received_cond:
            while True:
                found = [
                    r for r in self._requests
                    if all(getattr(r, k) == v for k, v in filters.items() if v is not None)
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake Twilio got {len(found)} of {count} requests in {timeout}s")
                self._received_cond.wait(left)

    # -------------------------------------------------- settings for the code under test

    def env(self) -> dict[str, str]:
        """Environment for a worker process (strings), the same values as `django_settings`."""
        return {name: str(value) for name, value in self.django_settings().items()}

    def django_settings(self) -> dict:
        return {
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": PRIMARY_SID,
            "TWILIO_AUTH_TOKEN": self.accounts[PRIMARY_SID],
            "TWILIO_FROM": PRIMARY_FROM,
            "TWILIO_MESSAGING_SERVICE_SID": "",
            "TWILIO_API_BASE_URL": self.url,
            "SMS_FALLBACK_BACKEND": "twilio",
            "TWILIO_FALLBACK_ACCOUNT_SID": FALLBACK_SID,
            "TWILIO_FALLBACK_AUTH_TOKEN": self.accounts[FALLBACK_SID],
            "TWILIO_FALLBACK_FROM": FALLBACK_FROM,
            "TWILIO_FALLBACK_MESSAGING_SERVICE_SID": "",
            "OUTBOUND_BACKOFF_BASE_SECONDS": 0.05,
            "OUTBOUND_BACKOFF_MAX_SECONDS": 0.5,
            "OUTBOUND_MAX_TRIES": 3,
            "OUTBOUND_HTTP_TIMEOUT_SECONDS": 1.0,
        }

    # -------------------------------------------------- used by the handler

    def _record(self, account_sid: str, form: dict[str, str]) -> ReceivedRequest:
        with self._lock:
            script = self._scripts.get(account_sid) or []
            behaviour = script.pop(0) if script else "ok"
            received = ReceivedRequest(account_sid=account_sid, form=form, behaviour=behaviour)
            self._requests.append(received)
            self._received_cond.notify_all()
            return received

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _message(self, account_sid: str, form: dict[str, str]) -> dict:
        sid = "SM" + uuid.uuid4().hex
        now = email.utils.format_datetime(datetime.now(timezone.utc))
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}"
        by_service = "MessagingServiceSid" in form and "From" not in form
        return {
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body"),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if by_service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form.get("To"),
            "uri": f"{uri}.json",
        }


def twilio_error(code: int, status: int) -> dict:
    return {
        "code": code,
        "message": ERROR_MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTwilio
    server_version = "FakeTwilio/1.0"

    def log_message(self, format, *args):  # quiet: tests read `requests()` instead
        pass

    def _send_json(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self._send_json(404, twilio_error(20404, 404))

    def do_POST(self):
        fake = self.fake
        match = _MESSAGES_RE.match(urlparse(self.path).path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if match is None:
            fake._violation(f"POST to an unknown path {self.path}")
            return self._send_json(404, twilio_error(20404, 404))
        account_sid = match["sid"]
        if not self._authorised(account_sid):
            fake._violation(f"bad basic auth for {account_sid}")
            return self._send_json(401, twilio_error(20003, 401))
        if not (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            fake._violation(f"Content-Type {self.headers.get('Content-Type')!r}")
        multi = parse_qs(raw, keep_blank_values=True)
        form = {name: values[-1] for name, values in multi.items()}
        received = fake._record(account_sid, form)

        # openapi None: checks off (bench/sms_delivery.py, where they would cost CPU).
        problems = fake.openapi.request_problems(account_sid, multi) if fake.openapi else []
        if problems:
            for problem in problems:
                fake._violation(f"request: {problem}")
            received.outcome = "rejected"
            return self._send_json(400, {**twilio_error(21604, 400), "message": "; ".join(problems)})

        behaviour = received.behaviour
        if behaviour == "ok":
            message = fake._message(account_sid, form)
            for problem in fake.openapi.response_problems(copy.deepcopy(message)) if fake.openapi else []:
                fake._violation(f"response: {problem}")
            # Accepted the moment Twilio has it, whether or not the client reads the answer.
            received.sid, received.outcome = message["sid"], "accepted"
            self._send_json(201, message)
        elif behaviour in _HTTP_ERRORS:
            status, code = _HTTP_ERRORS[behaviour]
            received.outcome = f"error {status}"
            self._send_json(status, twilio_error(code, status))
        elif isinstance(behaviour, int):
            received.outcome = "error 400"
            self._send_json(400, twilio_error(behaviour, 400))
        elif behaviour == "hang":
            received.outcome = "hung"
            time.sleep(fake.hang_seconds)
            self.close_connection = True
        elif behaviour == "hold":
            received.outcome = "held"
            fake._release.wait(120)
            self.close_connection = True
        elif behaviour == "drop":
            received.outcome = "dropped"
            self.close_connection = True
        else:
            raise ValueError(f"unknown fake Twilio behaviour {behaviour!r}")

    def _authorised(self, account_sid: str) -> bool:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == account_sid and self.fake.accounts.get(account_sid) == password
