"""The provider adapters on their own: the real twilio client against the fake Twilio server,
the console and file adapters, and which errors are worth another try."""

import base64
import datetime
import ipaddress
import json
import logging
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3
from django.conf import settings
from twilio.http.http_client import TwilioHttpClient

from apps.sms import providers
from apps.sms.providers import (
    ConsoleProvider,
    FileProvider,
    PermanentSmsError,
    TransientSmsError,
    TwilioProvider,
    classify_twilio_error,
)
from tests.fakes.twilio_server import (
    FALLBACK_SID,
    PRIMARY_FROM,
    PRIMARY_SID,
    PRIMARY_TOKEN,
    SPEC_PATH,
)
from tests.sms.conftest import new_number, otp_body


def twilio(**kwargs) -> TwilioProvider:
    return TwilioProvider(
        account_sid=kwargs.pop("account_sid", PRIMARY_SID),
        auth_token=kwargs.pop("auth_token", PRIMARY_TOKEN),
        from_number=kwargs.pop("from_number", PRIMARY_FROM),
        **kwargs,
    )


def send(provider, to, **kwargs):
    return provider.send(to=to, body=otp_body(), sender=kwargs.pop("sender", ""),
                         status_callback=kwargs.pop("status_callback", "http://127.0.0.1:8000/webhooks/twilio/status/tok"))


# ---------------------------------------------------------------- twilio


def test_the_real_twilio_client_reaches_the_configured_base_url(fake_twilio):
    to = new_number()
    result = send(twilio(), to)

    [request] = fake_twilio.requests(to=to)
    assert request.account_sid == PRIMARY_SID
    assert request.form == {
        "To": to,
        "From": PRIMARY_FROM,
        "Body": otp_body(),
        "StatusCallback": "http://127.0.0.1:8000/webhooks/twilio/status/tok",
    }
    assert result.message_id == request.sid and result.message_id.startswith("SM")
    assert result.status == "queued"


def test_a_sender_id_replaces_the_from_number(fake_twilio):
    to = new_number()
    send(twilio(), to, sender="MYBANK")
    assert fake_twilio.requests(to=to)[0].form["From"] == "MYBANK"


def test_a_messaging_service_sends_without_a_from_number(fake_twilio):
    to = new_number()
    result = send(twilio(from_number="", messaging_service_sid="MG" + "c3" * 16), to)
    form = fake_twilio.requests(to=to)[0].form
    assert "From" not in form and form["MessagingServiceSid"] == "MG" + "c3" * 16
    assert result.status == "accepted"


@pytest.mark.parametrize("behaviour", ["500", "503", "429", "drop"])
def test_server_errors_throttling_and_dropped_connections_are_transient(fake_twilio, behaviour):
    fake_twilio.program(PRIMARY_SID, behaviour)
    with pytest.raises(TransientSmsError):
        send(twilio(), new_number())


def test_a_provider_that_hangs_costs_one_bounded_try(fake_twilio):
    fake_twilio.program(PRIMARY_SID, "hang")
    started = time.monotonic()
    with pytest.raises(TransientSmsError) as exc:
        send(twilio(), new_number())
    assert exc.value.code == "timeout"
    assert time.monotonic() - started < settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + 1


@pytest.mark.parametrize("code", [21211, 21614, 21635, 21610])
def test_errors_about_the_number_are_permanent_for_every_provider(fake_twilio, code):
    fake_twilio.program(PRIMARY_SID, code)
    to = new_number()
    with pytest.raises(PermanentSmsError) as exc:
        send(twilio(), to)
    assert exc.value.code == str(code) and exc.value.recipient
    assert to not in exc.value.message  # the number stays out of stored error messages
    assert len(fake_twilio.requests(to=to)) == 1  # the client itself retries nothing


@pytest.mark.parametrize("code", [21408, 21612])
def test_errors_about_the_account_are_permanent_for_this_provider_only(fake_twilio, code):
    fake_twilio.program(PRIMARY_SID, code)
    with pytest.raises(PermanentSmsError) as exc:
        send(twilio(), new_number())
    assert not exc.value.recipient


def test_wrong_credentials_are_permanent(fake_twilio):
    with pytest.raises(PermanentSmsError) as exc:
        send(twilio(auth_token="wrong"), new_number())
    assert exc.value.code == "20003"
    fake_twilio.violations.clear()  # the fake reported the bad auth, as it should


def test_each_account_uses_its_own_credentials(fake_twilio):
    to = new_number()
    send(twilio(account_sid=FALLBACK_SID, auth_token=fake_twilio.accounts[FALLBACK_SID]), to)
    assert fake_twilio.accepted(to=to, account_sid=FALLBACK_SID)


def test_an_unconfigured_account_fails_without_a_request(fake_twilio):
    to = new_number()
    with pytest.raises(PermanentSmsError):
        send(twilio(account_sid="", auth_token=""), to)
    assert fake_twilio.requests(to=to) == []


@pytest.mark.parametrize(
    "status, code, transient",
    [(500, 20500, True), (502, None, True), (503, 20503, True), (429, 20429, True),
     (400, 21211, False), (400, 21614, False), (400, 21635, False), (400, 21610, False),
     (400, 21408, False), (400, 21612, False), (401, 20003, False), (404, 20404, False), (400, None, False)],
)
def test_error_classification(status, code, transient):
    error = classify_twilio_error(status, code, "The 'To' number +819012345678 is not valid", to="+819012345678")
    assert isinstance(error, TransientSmsError if transient else PermanentSmsError)
    assert "+819012345678" not in error.message


# ---------------------------------------------------------------- the twilio client's transport


def client_for(base_url: str, account_sid: str = PRIMARY_SID, token: str = PRIMARY_TOKEN):
    return providers._new_twilio_client(account_sid, token, base_url, settings.OUTBOUND_HTTP_TIMEOUT_SECONDS)


def test_a_direct_connection_keeps_no_copy_of_the_message_after_sending(fake_twilio):
    to = new_number()
    send(twilio(), to)
    client = providers._twilio_client(PRIMARY_SID, PRIMARY_TOKEN, settings.TWILIO_API_BASE_URL, settings.OUTBOUND_HTTP_TIMEOUT_SECONDS)
    assert isinstance(client.http_client, providers.Urllib3HttpClient)
    assert client.http_client._test_only_last_request is None  # TwilioHttpClient keeps the body (the OTP) there
    assert fake_twilio.accepted(to=to)


def test_through_a_proxy_the_twilio_client_uses_its_own_transport(monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal.example:3128")
    http = client_for("https://api.twilio.com").http_client
    assert isinstance(http, TwilioHttpClient)
    assert http.session.proxies["https"] == "http://proxy.internal.example:3128" and not http.session.trust_env


@pytest.fixture
def https_twilio(tmp_path):
    """A bare HTTPS server that accepts any message, with a certificate of its own."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            answer = json.dumps({"sid": "SM" + "d4" * 16, "status": "queued"}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert_path), received
    server.shutdown()
    server.server_close()


def test_a_certificate_outside_the_trusted_bundle_is_refused(https_twilio, monkeypatch):
    url, _, received = https_twilio
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    client = client_for(url)
    with pytest.raises(urllib3.exceptions.SSLError):
        client.messages.create(to="+819012345678", from_=PRIMARY_FROM, body="hello")
    assert received == []


def test_the_ca_bundle_named_in_the_environment_is_trusted(https_twilio, monkeypatch):
    url, cert_path, received = https_twilio
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert_path)
    message = client_for(url).messages.create(to="+819012345678", from_=PRIMARY_FROM, body="hello")
    assert message.sid == "SM" + "d4" * 16
    assert len(received) == 1 and b"Body=hello" in received[0]


# ---------------------------------------------------------------- the fake server itself


def test_the_fake_server_checks_requests_against_twilios_openapi_description(fake_twilio):
    import requests

    assert SPEC_PATH.exists(), f"Twilio's OpenAPI description is missing at {SPEC_PATH}"
    auth = "Basic " + base64.b64encode(f"{PRIMARY_SID}:{PRIMARY_TOKEN}".encode()).decode()
    response = requests.post(
        f"{fake_twilio.url}/2010-04-01/Accounts/{PRIMARY_SID}/Messages.json",
        data={"To": "+819012345678", "From": PRIMARY_FROM, "Body": "x", "StatusCallback": "not a url", "from_": "x"},
        headers={"Authorization": auth},
        timeout=5,
    )
    assert response.status_code == 400
    assert any("StatusCallback" in v for v in fake_twilio.violations)
    assert any("from_" in v for v in fake_twilio.violations)
    fake_twilio.violations.clear()


# ---------------------------------------------------------------- console and file


def test_the_console_provider_prints_to_stdout_not_to_the_logs(capsys, caplog):
    caplog.set_level(logging.DEBUG)
    result = ConsoleProvider().send(to="+819012345678", body=otp_body(), sender="MYBANK")
    assert otp_body() in capsys.readouterr().out
    assert otp_body() not in caplog.text
    assert result.status == "sent"


def test_the_file_provider_appends_one_json_line_per_message(tmp_path):
    path = tmp_path / "sms" / "out.jsonl"
    provider = FileProvider(str(path))
    provider.send(to="+819012345678", body=otp_body("111111"), sender="MYBANK", reference="d-1")
    provider.send(to="+819012345679", body=otp_body("222222"), sender="", reference="d-2")

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(l["delivery_id"], l["to"], l["from"], l["body"]) for l in lines] == [
        ("d-1", "+819012345678", "MYBANK", otp_body("111111")),
        ("d-2", "+819012345679", "", otp_body("222222")),
    ]
    assert all(l["sent_at"] for l in lines)


def test_the_file_provider_keeps_lines_whole_under_concurrent_writers(tmp_path):
    path = tmp_path / "out.jsonl"

    def write(n):
        FileProvider(str(path)).send(to="+819012345678", body="x" * 5000 + str(n), sender="", reference=str(n))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(json.loads(line)["delivery_id"] for line in path.read_text().splitlines()) == sorted(map(str, range(20)))


def test_the_file_provider_defaults_to_sms_file_path(tmp_path, settings):
    settings.SMS_FILE_PATH = str(tmp_path / "default.jsonl")
    FileProvider().send(to="+819012345678", body="hello", sender="")
    assert json.loads((tmp_path / "default.jsonl").read_text())["body"] == "hello"
