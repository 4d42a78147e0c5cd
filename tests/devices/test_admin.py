"""Devices in the admin: scoped per issuer, revocable by admins and operators, no secrets shown."""

import pytest
from django.urls import reverse

from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR, ROLES
from apps.devices.models import Device
from tests.devices.authenticator import SoftwareAuthenticator, b64url
from tests.devices.conftest import WEB_ORIGIN, enroll, options, register
from tests.factories import CardholderFactory
from tests.factories import client_for, make_staff
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db

PUSH = "fcm-push-secret-" + "p" * 30


def registered_device(api, sdk, cardholder):
    authenticator = SoftwareAuthenticator()
    token = enroll(api, cardholder)
    r = register(sdk, token, authenticator.create(options(sdk, token), origin=WEB_ORIGIN),
                 push={"platform": "fcm", "token": PUSH}, device_name=f"Phone of {cardholder.external_id}")
    return Device.objects.get(pk=r.json()["device_id"]), r.json()["device_token"], authenticator


@pytest.fixture
def ours(api, sdk, cardholder):
    return registered_device(api, sdk, cardholder)


@pytest.fixture
def theirs(other_api, sdk, other_issuer):
    other_issuer.webauthn_rp_id, other_issuer.webauthn_origins = "other.example", [WEB_ORIGIN]
    other_issuer.save()
    token = enroll(other_api, CardholderFactory(issuer=other_issuer, external_id="cust-theirs"))
    a = SoftwareAuthenticator()
    opts = options(sdk, token)
    r = register(sdk, token, a.create(opts, origin=WEB_ORIGIN))
    return Device.objects.get(pk=r.json()["device_id"])


@pytest.fixture
def staff(issuer):
    return {role: client_for(make_staff(issuer, role)) for role in ROLES}


CHANGELIST = reverse("admin:devices_device_changelist")


def change_url(device):
    return reverse("admin:devices_device_change", args=[device.pk])


@pytest.mark.parametrize("role", ROLES)
def test_staff_see_their_devices_and_never_secrets(staff, ours, theirs, role):
    device, device_token, authenticator = ours
    for page in (CHANGELIST, change_url(device)):
        r = staff[role].get(page)
        assert r.status_code == 200
        body = r.content.decode()
        assert device.name in body
        assert "cust-theirs" not in body
        for secret in (device_token, PUSH, device.token_hash, b64url(authenticator.credential_id),
                       bytes(device.public_key).hex(), authenticator.credential_id.hex()):
            assert secret not in body
    assert staff[role].get(change_url(theirs)).status_code == 302  # not found → admin index


@pytest.mark.parametrize("role", [ISSUER_ADMIN, OPERATOR])
def test_admins_and_operators_revoke_only_their_devices(staff, ours, theirs, role):
    device, device_token, _ = ours
    r = staff[role].post(CHANGELIST, {"action": "revoke_devices", "_selected_action": [device.pk, theirs.pk]})
    assert r.status_code == 302
    device.refresh_from_db(), theirs.refresh_from_db()
    assert device.status == Device.STATUS_REVOKED and theirs.status == Device.STATUS_ACTIVE


def test_analysts_cannot_revoke(staff, ours):
    device, _, _ = ours
    r = staff[ANALYST].post(CHANGELIST, {"action": "revoke_devices", "_selected_action": [device.pk]})
    device.refresh_from_db()
    assert device.status == Device.STATUS_ACTIVE
    assert "revoke_devices" not in staff[ANALYST].get(CHANGELIST).content.decode()


def test_nobody_adds_a_device_by_hand(staff):
    for role in ROLES:
        assert staff[role].get(reverse("admin:devices_device_add")).status_code == 403
