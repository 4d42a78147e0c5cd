"""The push adapters: console and file for development, FCM HTTP v1 (OAuth2 service account,
JWT bearer) against the fake FCM server, and how FCM's answers become transient or permanent."""

import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from apps.push.providers import (
    ConsolePushProvider,
    FilePushProvider,
    PermanentPushError,
    TransientPushError,
    access_tokens,
    classify_fcm_error,
    push_provider,
)
from tests.fakes.fcm_server import fcm_error
from tests.push.conftest import new_push_token

DATA = {"type": "3ds_authn_request", "acsTransId": str(uuid.uuid4())}


def test_the_console_adapter_prints_one_line_without_the_token(capsys):
    token = new_push_token()
    result = ConsolePushProvider().send(platform="fcm", token=token, data=DATA, reference="d-1")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and DATA["acsTransId"] in out and "d-1" in out
    assert token not in out and result.message_id.startswith("console-")


def test_the_file_adapter_appends_json_lines_without_the_token(tmp_path):
    path, token = tmp_path / "sub" / "push.jsonl", new_push_token()
    provider = FilePushProvider(str(path))
    first = provider.send(platform="fcm", token=token, data=DATA, reference="d-1")
    provider.send(platform="apns", token=token, data=DATA, reference="d-2")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["delivery_id"], line["platform"], line["data"]) for line in lines] == [("d-1", "fcm", DATA), ("d-2", "apns", DATA)]
    assert lines[0]["message_id"] == first.message_id
    assert token not in path.read_text()


def test_the_backend_comes_from_the_settings(settings, tmp_path):
    settings.PUSH_BACKEND = "console"
    assert isinstance(push_provider(), ConsolePushProvider)
    settings.PUSH_BACKEND, settings.PUSH_FILE_PATH = "file", str(tmp_path / "p.jsonl")
    assert push_provider().path == tmp_path / "p.jsonl"
    settings.PUSH_BACKEND = "carrier-pigeon"
    with pytest.raises(PermanentPushError) as exc:
        push_provider()
    assert exc.value.code == "not_configured"


# ---------------------------------------------------------------- FCM HTTP v1


def test_fcm_gets_an_access_token_with_a_signed_jwt_and_sends_the_silent_data_message(fake_fcm):
    token = new_push_token()
    result = push_provider().send(platform="fcm", token=token, data=DATA)
    [message] = fake_fcm.accepted(push_token=token)
    assert result.message_id == message.name and result.status_code == 200
    assert message.body == {
        "message": {
            "token": token,
            "data": DATA,
            "android": {"priority": "HIGH"},
            "apns": {"headers": {"apns-push-type": "background", "apns-priority": "5"},
                     "payload": {"aps": {"content-available": 1}}},
        }
    }
    assert [r.outcome for r in fake_fcm.token_requests()] == ["issued"]


def test_the_access_token_is_reused_until_shortly_before_it_expires(fake_fcm):
    provider = push_provider()
    for _ in range(3):
        provider.send(platform="fcm", token=new_push_token(), data=DATA)
    assert len(fake_fcm.token_requests()) == 1

    fake_fcm.token_lifetime = 2  # refreshed at half its life when it is this short
    access_tokens.clear()
    provider.send(platform="fcm", token=new_push_token(), data=DATA)
    provider.send(platform="fcm", token=new_push_token(), data=DATA)
    assert len(fake_fcm.token_requests()) == 2
    time.sleep(1.1)
    provider.send(platform="fcm", token=new_push_token(), data=DATA)
    assert len(fake_fcm.token_requests()) == 3
    fake_fcm.token_lifetime = 3600


def test_a_401_gets_a_new_access_token_once_and_sends_once(fake_fcm):
    provider = push_provider()
    provider.send(platform="fcm", token=new_push_token(), data=DATA)
    fake_fcm.revoke_access_tokens()
    token = new_push_token()
    provider.send(platform="fcm", token=token, data=DATA)
    assert len(fake_fcm.accepted(push_token=token)) == 1
    assert [r.outcome for r in fake_fcm.token_requests()] == ["issued", "issued"]


def test_a_second_401_in_a_row_is_permanent(fake_fcm):
    token = new_push_token()
    fake_fcm.program(token, "401", "401")
    with pytest.raises(PermanentPushError) as exc:
        push_provider().send(platform="fcm", token=token, data=DATA)
    assert (exc.value.code, exc.value.status_code) == ("unauthenticated", 401)
    assert len(fake_fcm.messages(push_token=token)) == 2 and len(fake_fcm.token_requests()) == 2


def test_the_token_endpoint_refuses_an_assertion_signed_with_another_key(fake_fcm, tmp_path, settings):
    other = fake_fcm.write_credentials(tmp_path / "stolen.json", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    settings.FCM_CREDENTIALS_FILE = str(other)
    with pytest.raises(PermanentPushError) as exc:
        push_provider().send(platform="fcm", token=new_push_token(), data=DATA)
    assert (exc.value.code, exc.value.status_code) == ("auth_failed", 400)
    assert fake_fcm.violations == ["token request: bad signature"]
    fake_fcm.violations.clear()
    assert fake_fcm.messages() == []


def test_a_token_endpoint_outage_is_transient(fake_fcm):
    fake_fcm.program_token_endpoint("500")
    with pytest.raises(TransientPushError) as exc:
        push_provider().send(platform="fcm", token=new_push_token(), data=DATA)
    assert exc.value.code == "auth_unavailable"
    push_provider().send(platform="fcm", token=new_push_token(), data=DATA)  # and it recovers


def test_without_an_override_the_token_uri_comes_from_the_credentials_file(fake_fcm, settings, tmp_path):
    settings.FCM_TOKEN_URI = ""
    settings.FCM_CREDENTIALS_FILE = str(fake_fcm.write_credentials(tmp_path / "sa.json", token_uri=fake_fcm.token_uri))
    token = new_push_token()
    push_provider().send(platform="fcm", token=token, data=DATA)
    assert len(fake_fcm.accepted(push_token=token)) == 1 and len(fake_fcm.token_requests()) == 1


@pytest.mark.parametrize(
    "behaviour, error, code",
    [
        ("unregistered", PermanentPushError, "unregistered"),
        ("invalid_argument", PermanentPushError, "invalid_argument"),
        ("sender_id_mismatch", PermanentPushError, "sender_id_mismatch"),
        ("500", TransientPushError, "internal"),
        ("503", TransientPushError, "unavailable"),
        ("429", TransientPushError, "quota_exceeded"),
        ("hang", TransientPushError, "timeout"),
    ],
)
def test_fcm_errors_are_transient_or_permanent(fake_fcm, behaviour, error, code):
    token = new_push_token()
    fake_fcm.program(token, behaviour)
    with pytest.raises(error) as exc:
        push_provider().send(platform="fcm", token=token, data=DATA)
    assert exc.value.code == code
    assert token not in exc.value.message and token not in exc.value.excerpt
    assert len(fake_fcm.messages(push_token=token)) == 1


def test_a_429_carries_its_retry_after(fake_fcm):
    token = new_push_token()
    fake_fcm.program(token, "429:7")
    with pytest.raises(TransientPushError) as exc:
        push_provider().send(platform="fcm", token=token, data=DATA)
    assert exc.value.retry_after == 7.0


def test_an_unreachable_fcm_is_transient(fake_fcm, settings):
    settings.FCM_API_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(TransientPushError) as exc:
        push_provider().send(platform="fcm", token=new_push_token(), data=DATA)
    assert exc.value.code == "network"


def test_fcm_refuses_apns_devices_without_a_request(fake_fcm):
    with pytest.raises(PermanentPushError) as exc:
        push_provider().send(platform="apns", token="a" * 64, data=DATA)
    assert exc.value.code == "platform_unsupported"
    assert fake_fcm.messages() == [] and fake_fcm.token_requests() == []


def test_missing_credentials_are_permanent(settings):
    settings.PUSH_BACKEND, settings.FCM_CREDENTIALS_FILE = "fcm", "/nonexistent/service-account.json"
    with pytest.raises(PermanentPushError) as exc:
        push_provider().send(platform="fcm", token=new_push_token(), data=DATA)
    assert exc.value.code == "not_configured" and "nonexistent" not in exc.value.message


def test_classification_reads_the_fcm_error_code_before_the_http_status():
    status, body = fcm_error("unregistered")
    error = classify_fcm_error(status, json.dumps(body))
    assert isinstance(error, PermanentPushError) and error.code == "unregistered"
    assert isinstance(classify_fcm_error(502, "<html>bad gateway</html>"), TransientPushError)
    assert isinstance(classify_fcm_error(418, ""), PermanentPushError)

