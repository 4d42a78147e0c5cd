"""One enrollment token, many simultaneous registrations: exactly one device (PostgreSQL)."""

import pytest

from apps.devices.models import Device, DeviceEnrollment
from tests.concurrency import run_parallel
from tests.conftest import JsonClient
from tests.devices.authenticator import SoftwareAuthenticator
from tests.devices.conftest import WEB_ORIGIN, enroll, options, registration_body
from tests.support.fixtures import postgres_only  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_parallel_registrations_with_one_token_create_one_device(api, cardholder):
    token = enroll(api, cardholder)
    opts = options(JsonClient(), token)
    # Distinct authenticators: nothing but the token's single use can stop the second device.
    bodies = [registration_body(token, SoftwareAuthenticator().create(opts, origin=WEB_ORIGIN)) for _ in range(8)]

    responses = run_parallel(8, lambda i: JsonClient().post("/sdk/v1/registrations", bodies[i]))

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [400] * 7, [r.content for r in responses]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 400} == {"invalid_enrollment_token"}
    assert Device.objects.count() == 1
    assert DeviceEnrollment.objects.get().used_at is not None


def test_parallel_revocations_revoke_once(api, cardholder):
    token = enroll(api, cardholder)
    body = registration_body(token, SoftwareAuthenticator().create(options(JsonClient(), token), origin=WEB_ORIGIN))
    device_token = JsonClient().post("/sdk/v1/registrations", body).json()["device_token"]

    def revoke(i):
        client = JsonClient()
        client.credentials(HTTP_AUTHORIZATION=f"Device {device_token}")
        return client.delete("/sdk/v1/registrations/current").status_code

    assert run_parallel(6, revoke) == [204] * 6
    from apps.audit.models import AuditEvent

    assert AuditEvent.objects.filter(kind="device.revoked").count() == 1
