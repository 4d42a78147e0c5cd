"""Device enrollment (issuer API) and WebAuthn registration (SDK API), end to end over HTTP."""

import hashlib
import json
from datetime import timedelta

import pytest
import webauthn
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.crypto import hash_secret
from apps.devices.models import Device, DeviceEnrollment
from apps.devices.services import ENROLLMENT_LIFETIME
from tests.devices.authenticator import SoftwareAuthenticator, b64url, b64url_decode
from tests.devices.conftest import (
    ANDROID_ORIGIN,
    RP_ID,
    WEB_ORIGIN,
    device_client,
    enroll,
    options,
    register,
    registration_body,
)
from tests.factories import CardholderFactory

pytestmark = pytest.mark.django_db


def db_dump() -> str:
    with connection.cursor() as cursor:
        rows = []
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows += cursor.fetchall()
    return repr([[bytes(v) if isinstance(v, memoryview) else v for v in row] for row in rows])


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code, response.json()


# ---------------------------------------------------------------- enrollment tokens (issuer API)


def test_an_enrollment_token_is_short_lived_stored_hashed_and_audited(api, cardholder):
    before = timezone.now()
    r = api.post(f"/api/v1/cardholders/{cardholder.pk}/device-enrollments")

    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"enrollment_token", "expires_at"}
    token = body["enrollment_token"]
    assert len(token) >= 40
    enrollment = DeviceEnrollment.objects.get()
    assert enrollment.cardholder == cardholder
    assert enrollment.token_hash == hash_secret(token, purpose="device-enrollment-token")
    assert before + ENROLLMENT_LIFETIME <= enrollment.expires_at <= timezone.now() + ENROLLMENT_LIFETIME
    event = AuditEvent.objects.get(kind="device.enrollment_created")
    assert event.object_id == str(enrollment.pk) and token not in json.dumps(event.data)


def test_another_issuers_cardholder_is_not_found(other_api, cardholder):
    r = other_api.post(f"/api/v1/cardholders/{cardholder.pk}/device-enrollments")
    assert_error(r, 404, "not_found")
    assert not DeviceEnrollment.objects.exists()


def test_enrollment_needs_an_api_key(anon_api, cardholder):
    r = anon_api.post(f"/api/v1/cardholders/{cardholder.pk}/device-enrollments")
    assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Bearer")


def test_an_idempotent_replay_returns_the_same_token_which_is_never_stored_in_clear(api, cardholder):
    url = f"/api/v1/cardholders/{cardholder.pk}/device-enrollments"
    first = api.post(url, HTTP_IDEMPOTENCY_KEY="enroll-1")
    second = api.post(url, HTTP_IDEMPOTENCY_KEY="enroll-1")

    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert first.json() == second.json()
    assert DeviceEnrollment.objects.count() == 1
    assert first.json()["enrollment_token"] not in db_dump()


# ---------------------------------------------------------------- registration options


def test_options_name_the_issuers_rp_an_opaque_user_and_require_user_verification(api, sdk, cardholder, issuer):
    opts = options(sdk, enroll(api, cardholder))

    assert opts["rp"] == {"id": RP_ID, "name": issuer.name}
    user_id = b64url_decode(opts["user"]["id"])
    assert len(user_id) == 32
    assert cardholder.external_id.encode() not in user_id and str(cardholder.pk).encode() not in user_id
    assert opts["authenticatorSelection"]["userVerification"] == "required"
    assert opts["attestation"] == "none"
    assert {"type": "public-key", "alg": -7} in opts["pubKeyCredParams"]
    assert bytes(DeviceEnrollment.objects.get().challenge) == b64url_decode(opts["challenge"])


def test_the_user_handle_is_stable_per_cardholder(api, sdk, cardholder):
    first = options(sdk, enroll(api, cardholder))["user"]["id"]
    second = options(sdk, enroll(api, cardholder))["user"]["id"]
    other = options(sdk, enroll(api, CardholderFactory(issuer=cardholder.issuer)))["user"]["id"]
    assert first == second != other


def test_options_are_refused_when_the_issuer_has_no_rp_id(api, sdk, cardholder, issuer):
    token = enroll(api, cardholder)
    issuer.webauthn_rp_id = ""
    issuer.save(update_fields=["webauthn_rp_id"])
    r = sdk.post("/sdk/v1/registrations/options", {"enrollment_token": token})
    assert_error(r, 409, "webauthn_not_configured")


@pytest.mark.parametrize("body", [{"enrollment_token": "nope"}, {"enrollment_token": ""}])
def test_options_refuse_an_unknown_token(sdk, body):
    r = sdk.post("/sdk/v1/registrations/options", body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] in {"invalid_enrollment_token", "validation_error"}


@pytest.mark.parametrize("body", [[], {"enrollment_token": 5}, {"enrollment_token": "x", "extra": 1}])
def test_options_refuse_malformed_bodies(sdk, body):
    assert_error(sdk.post("/sdk/v1/registrations/options", body), 400, "validation_error")


# ---------------------------------------------------------------- the whole flow


@pytest.mark.parametrize("fmt", ["none", "packed"])
@pytest.mark.parametrize("origin", [WEB_ORIGIN, ANDROID_ORIGIN])
def test_enroll_register_and_revoke(api, sdk, cardholder, issuer, authenticator, fmt, origin):
    token = enroll(api, cardholder)
    credential = authenticator.create(options(sdk, token), origin=origin, fmt=fmt)

    r = register(sdk, token, credential)

    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == {"device_id", "device_token"}
    device = Device.objects.get(pk=body["device_id"])
    assert (device.issuer, device.cardholder, device.status) == (issuer, cardholder, Device.STATUS_ACTIVE)
    assert bytes(device.credential_id) == authenticator.credential_id
    assert device.aaguid == str(authenticator.aaguid)
    assert device.attestation_format == fmt
    assert device.push_platform == "fcm" and device.name == "Pixel 9"
    assert device.get_push_token() == "fcm-push-token-" + "x" * 40
    assert device.token_hash == hash_secret(body["device_token"], purpose="device-token")
    assert DeviceEnrollment.objects.get().used_at is not None
    assert AuditEvent.objects.filter(kind="device.registered", object_id=str(device.pk)).exists()

    client = device_client(body["device_token"])
    assert client.delete("/sdk/v1/registrations/current").status_code == 204
    device.refresh_from_db()
    assert device.status == Device.STATUS_REVOKED and device.revoked_at is not None
    assert client.delete("/sdk/v1/registrations/current").status_code == 204  # idempotent
    assert AuditEvent.objects.filter(kind="device.revoked", object_id=str(device.pk)).count() == 1


def test_the_stored_public_key_verifies_the_authenticators_assertions(api, sdk, cardholder, authenticator):
    """What the OOB challenge will rely on: the key and counter stored at registration."""
    token = enroll(api, cardholder)
    register(sdk, token, authenticator.create(options(sdk, token), origin=ANDROID_ORIGIN))
    device = Device.objects.get()
    challenge = b"transaction-bound-challenge-0001"

    verified = webauthn.verify_authentication_response(
        credential=authenticator.get_assertion(rp_id=RP_ID, challenge=challenge, origin=ANDROID_ORIGIN),
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=[WEB_ORIGIN, ANDROID_ORIGIN],
        credential_public_key=bytes(device.public_key),
        credential_current_sign_count=device.sign_count,
        require_user_verification=True,
    )
    assert verified.new_sign_count == 1 and verified.user_verified


def test_new_options_exclude_the_cardholders_active_credentials(api, sdk, cardholder, authenticator):
    token = enroll(api, cardholder)
    register(sdk, token, authenticator.create(options(sdk, token), origin=WEB_ORIGIN))
    opts = options(sdk, enroll(api, cardholder))
    assert [c["id"] for c in opts["excludeCredentials"]] == [b64url(authenticator.credential_id)]


# ---------------------------------------------------------------- refused registrations


def test_an_expired_token_is_refused(api, sdk, cardholder, authenticator):
    token = enroll(api, cardholder)
    opts = options(sdk, token)
    DeviceEnrollment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert_error(register(sdk, token, authenticator.create(opts, origin=WEB_ORIGIN)), 400, "invalid_enrollment_token")
    assert_error(sdk.post("/sdk/v1/registrations/options", {"enrollment_token": token}), 400, "invalid_enrollment_token")
    assert not Device.objects.exists()


def test_a_token_registers_one_device_only(api, sdk, cardholder, authenticator):
    token = enroll(api, cardholder)
    opts = options(sdk, token)
    assert register(sdk, token, authenticator.create(opts, origin=WEB_ORIGIN)).status_code == 201

    again = SoftwareAuthenticator().create(opts, origin=WEB_ORIGIN)
    assert_error(register(sdk, token, again), 400, "invalid_enrollment_token")
    assert_error(sdk.post("/sdk/v1/registrations/options", {"enrollment_token": token}), 400, "invalid_enrollment_token")
    assert Device.objects.count() == 1


def test_registration_without_options_is_a_conflict(api, sdk, cardholder, authenticator):
    token = enroll(api, cardholder)
    fake_options = {"rp": {"id": RP_ID}, "challenge": b64url(b"c" * 32), "user": {"id": b64url(b"u" * 32)}}
    assert_error(register(sdk, token, authenticator.create(fake_options, origin=WEB_ORIGIN)), 409, "registration_options_required")


def _bad_credentials(authenticator, opts):
    good_client_data = authenticator.client_data(
        type_="webauthn.create", challenge=b64url_decode(opts["challenge"]), origin=WEB_ORIGIN
    )
    tampered = good_client_data.replace(b'"crossOrigin":false', b'"crossOrigin":false,"x":1')
    return {
        "wrong origin": authenticator.create(opts, origin="https://evil.example"),
        "wrong rp id": authenticator.create(opts, origin=WEB_ORIGIN, rp_id="evil.example"),
        "no user verification": authenticator.create(opts, origin=WEB_ORIGIN, user_verified=False),
        "other challenge": authenticator.create(opts, origin=WEB_ORIGIN, challenge=b"\x00" * 64),
        "tampered clientDataJSON (packed signature)": authenticator.create(
            opts, origin=WEB_ORIGIN, fmt="packed", client_data_json=tampered
        ),
        "get, not create": {
            **authenticator.create(opts, origin=WEB_ORIGIN),
            "response": {
                **authenticator.create(opts, origin=WEB_ORIGIN)["response"],
                "clientDataJSON": b64url(good_client_data.replace(b"webauthn.create", b"webauthn.get")),
            },
        },
        "garbage attestation": {
            **authenticator.create(opts, origin=WEB_ORIGIN),
            "response": {"clientDataJSON": b64url(good_client_data), "attestationObject": b64url(b"\xff\x00garbage")},
        },
        "id does not match rawId": {**authenticator.create(opts, origin=WEB_ORIGIN), "id": b64url(b"other")},
        "empty object": {},
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong origin", "wrong rp id", "no user verification", "other challenge",
        "tampered clientDataJSON (packed signature)", "get, not create", "garbage attestation",
        "id does not match rawId", "empty object",
    ],
)
def test_a_bad_credential_is_refused_and_the_token_stays_usable(api, sdk, cardholder, authenticator, case):
    token = enroll(api, cardholder)
    opts = options(sdk, token)

    r = register(sdk, token, _bad_credentials(authenticator, opts)[case])

    assert_error(r, 400, "invalid_credential")
    assert "credential" in r.json()["error"]["fields"]
    assert not Device.objects.exists()
    assert DeviceEnrollment.objects.get().used_at is None
    # A failed call wrote nothing: the genuine authenticator can still register with the token.
    assert register(sdk, token, authenticator.create(opts, origin=WEB_ORIGIN)).status_code == 201


def test_a_credential_registered_twice_is_a_conflict(api, sdk, cardholder, authenticator):
    token = enroll(api, cardholder)
    register(sdk, token, authenticator.create(options(sdk, token), origin=WEB_ORIGIN))
    token2 = enroll(api, cardholder)
    r = register(sdk, token2, authenticator.create(options(sdk, token2), origin=WEB_ORIGIN))
    assert_error(r, 409, "credential_already_registered")
    assert DeviceEnrollment.objects.filter(used_at__isnull=True).count() == 1  # rolled back


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"push": {"platform": "sms", "token": "t"}}, "push.platform"),
        ({"push": {"platform": "fcm"}}, "push.token"),
        ({"credential": "not an object"}, "credential"),
        ({"device_name": 7}, "device_name"),
        ({"unexpected": True}, "unexpected"),
    ],
)
def test_malformed_registrations_name_the_field(api, sdk, cardholder, authenticator, overrides, field):
    token = enroll(api, cardholder)
    credential = authenticator.create(options(sdk, token), origin=WEB_ORIGIN)
    r = sdk.post("/sdk/v1/registrations", {**registration_body(token, credential), **overrides})
    assert_error(r, 400, "validation_error")
    assert field in r.json()["error"]["fields"]


# ---------------------------------------------------------------- device authentication


@pytest.mark.parametrize("header", [None, "Device not-a-token", "Bearer something", "Device "])
def test_unenrolling_needs_a_known_device_token(sdk, header):
    if header:
        sdk.credentials(HTTP_AUTHORIZATION=header)
    r = sdk.delete("/sdk/v1/registrations/current")
    assert r.status_code == 401
    assert r["WWW-Authenticate"].startswith("Device")
    assert r.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}


def test_a_device_token_is_bound_to_its_own_device(api, sdk, cardholder):
    tokens = []
    for _ in range(2):
        a = SoftwareAuthenticator()
        t = enroll(api, cardholder)
        tokens.append(register(sdk, t, a.create(options(sdk, t), origin=WEB_ORIGIN)).json())
    assert device_client(tokens[0]["device_token"]).delete("/sdk/v1/registrations/current").status_code == 204
    statuses = dict(Device.objects.values_list("pk", "status"))
    assert {str(k): v for k, v in statuses.items()} == {
        tokens[0]["device_id"]: Device.STATUS_REVOKED,
        tokens[1]["device_id"]: Device.STATUS_ACTIVE,
    }


def test_deleting_the_cardholder_removes_devices_and_enrollments(api, sdk, cardholder, authenticator):
    token = enroll(api, cardholder)
    register(sdk, token, authenticator.create(options(sdk, token), origin=WEB_ORIGIN))
    enroll(api, cardholder)
    assert api.delete(f"/api/v1/cardholders/{cardholder.pk}").status_code == 204
    assert not Device.objects.exists() and not DeviceEnrollment.objects.exists()


# ---------------------------------------------------------------- secrets at rest


def test_no_token_or_push_secret_is_stored_in_clear(api, sdk, cardholder, authenticator):
    enrollment_token = enroll(api, cardholder)
    push_token = "apns-" + hashlib.sha256(b"push").hexdigest()
    r = register(
        sdk, enrollment_token, authenticator.create(options(sdk, enrollment_token), origin=WEB_ORIGIN),
        push={"platform": "apns", "token": push_token},
    )
    device_token = r.json()["device_token"]
    pending_token = enroll(api, cardholder)

    dump = db_dump()
    for secret in (enrollment_token, device_token, pending_token, push_token):
        assert secret not in dump
        assert secret.encode() not in dump.encode()
    assert Device.objects.get().get_push_token() == push_token
