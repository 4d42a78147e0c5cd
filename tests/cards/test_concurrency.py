"""Uniqueness holds under concurrent requests (PostgreSQL)."""

import pytest

from apps.cards.models import Card, Phone
from tests.concurrency import run_parallel
from tests.conftest import JsonClient
from tests.support.fixtures import postgres_only  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(api_key):
    client = JsonClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


def test_the_same_pan_enrolled_in_parallel_lands_once(api_key, cardholder):
    def enroll(i):
        return client_for(api_key).post(
            "/api/v1/cards",
            {"card_id": f"c{i}", "cardholder": str(cardholder.pk), "pan": "4111111111111111", "expiry_month": 12, "expiry_year": 2099},
        ).status_code

    codes = run_parallel(8, enroll)
    assert sorted(codes) == [201] + [409] * 7
    assert Card.objects.count() == 1


def test_parallel_primary_phones_leave_exactly_one_primary(api_key, cardholder):
    numbers = ["+819012345671", "+819012345672", "+819012345673", "+819012345674", "+819012345675", "+819012345676"]

    def add(i):
        return client_for(api_key).post(
            f"/api/v1/cardholders/{cardholder.pk}/phones", {"number": numbers[i], "is_primary": True}
        ).status_code

    assert run_parallel(len(numbers), add) == [201] * len(numbers)
    assert Phone.objects.filter(cardholder=cardholder, is_primary=True).count() == 1
