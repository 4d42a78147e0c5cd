import threading

import pytest
from django.db import connection

from apps.cards.models import Cardholder
from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db


def test_the_same_key_and_body_replays_the_first_response(api):
    body = {"external_id": "c-1", "name": "A"}
    first = api.post("/api/v1/cardholders", body, HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post("/api/v1/cardholders", body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Cardholder.objects.count() == 1


def test_the_same_key_with_another_body_is_409(api):
    api.post("/api/v1/cardholders", {"external_id": "c-1", "name": "A"}, HTTP_IDEMPOTENCY_KEY="k-1")
    r = api.post("/api/v1/cardholders", {"external_id": "c-2", "name": "B"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert Cardholder.objects.count() == 1


def test_keys_are_scoped_per_issuer(api, other_api):
    body = {"external_id": "c-1", "name": "A"}
    assert api.post("/api/v1/cardholders", body, HTTP_IDEMPOTENCY_KEY="k-1").status_code == 201
    r = other_api.post("/api/v1/cardholders", body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert r.status_code == 201 and "Idempotent-Replayed" not in r
    assert Cardholder.objects.count() == 2


def test_a_failed_request_is_not_remembered(api):
    bad = {"external_id": "c-1"}
    assert api.post("/api/v1/cardholders", bad, HTTP_IDEMPOTENCY_KEY="k-1").status_code == 400
    # The key is free again: a corrected retry is a different body, and it is not a 409.
    assert api.post("/api/v1/cardholders", {"external_id": "c-1", "name": "A"}, HTTP_IDEMPOTENCY_KEY="k-1").status_code == 201


def test_without_a_key_every_post_runs(api):
    api.post("/api/v1/cardholders", {"external_id": "c-1", "name": "A"})
    assert api.post("/api/v1/cardholders", {"external_id": "c-1", "name": "A"}).status_code == 409


def test_an_overlong_key_is_400(api):
    r = api.post("/api/v1/cardholders", {"external_id": "c-1", "name": "A"}, HTTP_IDEMPOTENCY_KEY="k" * 300)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_idempotency_key"
    assert not Cardholder.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_row(issuer, api_key):
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency is a PostgreSQL property")
    results = []
    barrier = threading.Barrier(8)

    def call():
        client = JsonClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        barrier.wait()
        r = client.post("/api/v1/cardholders", {"external_id": "c-1", "name": "A"}, HTTP_IDEMPOTENCY_KEY="same")
        results.append((r.status_code, r.json().get("id")))
        connection.close()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Cardholder.objects.count() == 1
    ids = {i for code, i in results if code == 201}
    assert len(ids) == 1  # every 201 is the same response
    assert all(code in (201, 409) for code, _ in results)
