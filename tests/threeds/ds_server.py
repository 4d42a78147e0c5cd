"""A local Directory Server for the RReq tests: receives RReqs at its dsURL and answers RRes.

It runs in the pytest process (a ThreadingHTTPServer in a thread); a Celery worker process
reaches it over HTTP like a real DS. Tests program what it answers, in order, and read back every
RReq it received. Each RReq is checked against the EMV 3DS rules a DS applies (required and
conditional elements, formats, no PAN anywhere); anything wrong lands in `violations`.

    ds.answer(500, BAD_JSON, RESULTS_02, ERRO, HANG)   # then `default` (an RRes "01")
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.core.pan import luhn_valid
from apps.threeds.simulator.messages import rres_for

OK = "ok"
BAD_JSON = "bad_json"  # 200 with a body that is not JSON
RESULTS_02 = "results_02"  # an RRes whose resultsStatus is not "01"
ERRO = "erro"  # an Erro message instead of an RRes
WRONG_IDS = "wrong_ids"  # an RRes "01" for another transaction
HANG = "hang"  # answers only after the sender's read timeout

RREQ_ELEMENTS = {
    "messageType", "messageVersion", "threeDSServerTransID", "dsTransID", "acsTransID", "sdkTransID",
    "messageCategory", "transStatus", "transStatusReason", "eci", "authenticationValue", "authenticationType",
    "authenticationMethod", "interactionCounter", "challengeCancel", "acsRenderingType", "messageExtension",
}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")


def rreq_violations(message) -> list[str]:
    """What a DS would reject in this RReq (EMV 3DS 2.1.0 / 2.2.0 / 2.3.1, table A.1, RReq column)."""
    if not isinstance(message, dict):
        return ["not a JSON object"]
    problems = [f"unknown element {name}" for name in sorted(set(message) - RREQ_ELEMENTS)]
    version = message.get("messageVersion")
    status = message.get("transStatus")
    if message.get("messageType") != "RReq":
        problems.append("messageType is not RReq")
    if version not in ("2.1.0", "2.2.0", "2.3.1"):
        problems.append("messageVersion")
    for name in ("threeDSServerTransID", "dsTransID", "acsTransID"):
        if not _UUID.match(str(message.get(name, ""))):
            problems.append(f"{name} is not a UUID")
    if "sdkTransID" in message and not _UUID.match(str(message["sdkTransID"])):
        problems.append("sdkTransID is not a UUID")
    if message.get("messageCategory") not in ("01", "02"):
        problems.append("messageCategory")
    if status not in ("Y", "N", "U", "A", "R"):
        problems.append("transStatus")
    if not re.fullmatch(r"[0-9]{2}", str(message.get("interactionCounter", ""))):
        problems.append("interactionCounter is not 2 digits")
    if status in ("N", "U", "R") and not re.fullmatch(r"[0-9]{2}", str(message.get("transStatusReason", ""))):
        problems.append("transStatusReason missing for N/U/R")
    if status in ("Y", "A") and "transStatusReason" in message:
        problems.append("transStatusReason with Y/A")
    if "eci" in message and not re.fullmatch(r"[0-9]{2}", str(message["eci"])):
        problems.append("eci")
    value = message.get("authenticationValue")
    if status in ("Y", "A"):
        try:
            if not isinstance(value, str) or len(value) != 28 or len(base64.b64decode(value, validate=True)) != 20:
                problems.append("authenticationValue is not 20 bytes of base64")
        except ValueError:
            problems.append("authenticationValue is not base64")
    elif value is not None:
        problems.append("authenticationValue without Y/A")
    if message.get("authenticationType") not in ("01", "02", "03"):
        problems.append("authenticationType")
    if "challengeCancel" in message and message["challengeCancel"] not in ("01", "02", "03", "04", "05", "06", "07", "08"):
        problems.append("challengeCancel")
    if version == "2.1.0":
        problems += [f"{name} is a 2.2.0 element" for name in ("authenticationMethod", "acsRenderingType") if name in message]
    for extension in message.get("messageExtension", []):
        if not {"name", "id", "criticalityIndicator", "data"} <= set(extension):
            problems.append("messageExtension element incomplete")
    for run in _DIGIT_RUN.findall(json.dumps(message)):
        if luhn_valid(run):
            problems.append("a PAN-like number")
    return problems


@dataclass
class ReceivedRReq:
    path: str
    headers: dict
    body: bytes
    message: dict | None
    at: float  # time.monotonic() on arrival
    behaviour: object = OK
    answered: int | None = None


@dataclass
class FakeDS:
    default: object = OK
    hang_seconds: float = 6.0
    received: list[ReceivedRReq] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    _script: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ds/rreq"

    def start(self) -> FakeDS:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, *behaviours) -> None:
        """What to answer to the next RReqs, in order: an HTTP status (int) or one of the names
        above; then `default`."""
        with self._lock:
            self._script = list(behaviours)

    def rreqs(self, acs_trans_id=None) -> list[ReceivedRReq]:
        with self._lock:
            return [r for r in self.received if acs_trans_id is None or (r.message or {}).get("acsTransID") == str(acs_trans_id)]

    def acknowledged(self, acs_trans_id=None) -> list[ReceivedRReq]:
        """The RReqs this DS answered with an RRes "01"."""
        return [r for r in self.rreqs(acs_trans_id) if r.behaviour == OK and r.answered == 200]

    def _take(self, received: ReceivedRReq):
        with self._lock:
            self.received.append(received)
            self.violations += [f"{(received.message or {}).get('acsTransID')}: {p}" for p in rreq_violations(received.message)]
            return self._script.pop(0) if self._script else self.default


def _answer(behaviour, message: dict) -> tuple[int, bytes]:
    if isinstance(behaviour, int):
        return behaviour, b'{"error": "programmed failure"}'
    if behaviour == BAD_JSON:
        return 200, b"<html>Service temporarily unavailable</html>"
    if behaviour == RESULTS_02:
        return 200, json.dumps(rres_for(message, "02")).encode()
    if behaviour == WRONG_IDS:
        return 200, json.dumps({**rres_for(message), "acsTransID": str(uuid.uuid4())}).encode()
    if behaviour == ERRO:
        erro = {
            "messageType": "Erro", "messageVersion": message.get("messageVersion", "2.2.0"), "errorComponent": "D",
            "errorCode": "404", "errorDescription": "Transient system failure", "errorDetail": "DS busy",
            "errorMessageType": "RReq",
        }
        return 200, json.dumps(erro).encode()
    return 200, json.dumps(rres_for(message)).encode()


def _handler_for(ds: FakeDS):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                message = json.loads(body)
            except ValueError:
                message = None
            received = ReceivedRReq(self.path, dict(self.headers), body, message, time.monotonic())
            behaviour = ds._take(received)
            received.behaviour = behaviour
            if behaviour == HANG:
                time.sleep(ds.hang_seconds)  # the sender has given up by now
            status, payload = _answer(behaviour, message if isinstance(message, dict) else {})
            received.answered = status
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if behaviour == BAD_JSON else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                received.answered = None  # the sender hung up (timeout): nothing was acknowledged

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def ds_server(settings):
    """A DS on 127.0.0.1; a HANG lasts just past this process's OUTBOUND_HTTP_TIMEOUT_SECONDS."""
    ds = FakeDS(hang_seconds=settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + 0.5).start()
    yield ds
    ds.stop()
