"""An Idempotency-Key is scoped by issuer, method and path (issue 11 item 8): the same key on
another path is another request, never a replay of the first path's response."""

import pytest

from apps.core.crypto import hash_secret
from apps.devices.models import DeviceEnrollment
from apps.devices.services import ENROLLMENT_TOKEN_PURPOSE
from tests.factories import CardholderFactory

pytestmark = pytest.mark.django_db


def _enroll(api, cardholder, key):
    return api.post(f"/api/v1/cardholders/{cardholder.pk}/device-enrollments", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_on_another_cardholder_gives_that_cardholders_own_token(api, issuer):
    alice, bob = CardholderFactory(issuer=issuer), CardholderFactory(issuer=issuer)
    first = _enroll(api, alice, "enroll-1")
    second = _enroll(api, bob, "enroll-1")
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second
    token_a, token_b = first.json()["enrollment_token"], second.json()["enrollment_token"]
    assert token_a != token_b
    # Each token belongs to its own cardholder's enrollment.
    assert DeviceEnrollment.objects.get(token_hash=hash_secret(token_b, purpose=ENROLLMENT_TOKEN_PURPOSE)).cardholder == bob
    assert DeviceEnrollment.objects.get(token_hash=hash_secret(token_a, purpose=ENROLLMENT_TOKEN_PURPOSE)).cardholder == alice
    # And each path still replays its own response.
    again = _enroll(api, bob, "enroll-1")
    assert again["Idempotent-Replayed"] == "true" and again.json()["enrollment_token"] == token_b
    assert DeviceEnrollment.objects.count() == 2


def test_the_same_key_on_two_resource_kinds_runs_both(api, cardholder):
    made = api.post("/api/v1/cardholders", {"external_id": "c-9", "name": "N"}, HTTP_IDEMPOTENCY_KEY="k-shared")
    phone = api.post(f"/api/v1/cardholders/{cardholder.pk}/phones", {"number": "+819012345670"}, HTTP_IDEMPOTENCY_KEY="k-shared")
    assert made.status_code == phone.status_code == 201
    assert "Idempotent-Replayed" not in phone
    assert phone.json() != made.json() and phone.json()["number"] == "+819012345670"


@pytest.mark.parametrize("length", [600, 5000])
def test_a_very_long_path_with_a_key_is_a_clean_error_not_a_500(api, length):
    r = api.post(f"/api/v1/cardholders/{'x' * length}/phones", {"number": "+819012345670"}, HTTP_IDEMPOTENCY_KEY="k-long")
    assert r.status_code == 404
    assert r["Content-Type"].startswith("application/json")

