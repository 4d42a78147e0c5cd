import pytest
from django.utils import timezone

from apps.issuers.models import ApiKey
from apps.issuers.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_no_key_is_401_with_www_authenticate(anon_api):
    r = anon_api.get("/api/v1/card-products")
    assert r.status_code == 401
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "header",
    ["Bearer ik_nope_nope", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer ik_", "Bearer \u00e9\u00e9"],
)
def test_a_wrong_key_is_401(anon_api, header, api_key):
    r = anon_api.get("/api/v1/card-products", HTTP_AUTHORIZATION=header)
    assert r.status_code == 401
    assert "WWW-Authenticate" in r


def test_a_key_with_the_right_prefix_but_wrong_secret_is_401(anon_api, api_key):
    forged = api_key[:-4] + ("AAAA" if not api_key.endswith("AAAA") else "BBBB")
    assert anon_api.get("/api/v1/card-products", HTTP_AUTHORIZATION=f"Bearer {forged}").status_code == 401


def test_a_revoked_key_is_401(api, issuer):
    key = ApiKey.objects.get(issuer=issuer)
    api_key_revoke(api_key=key, actor="tests")
    assert api.get("/api/v1/card-products").status_code == 401


def test_the_key_is_stored_only_as_a_hash(issuer):
    key, plaintext = api_key_create(issuer=issuer, name="backend")
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    assert plaintext not in str(row)
    assert plaintext.split("_", 2)[2] not in str(row)
    assert len(row["key_hash"]) == 64


def test_use_records_last_used_time(api, issuer):
    key = ApiKey.objects.get(issuer=issuer)
    assert key.last_used_at is None
    api.get("/api/v1/card-products")
    key.refresh_from_db()
    assert key.last_used_at is not None and (timezone.now() - key.last_used_at).total_seconds() < 60


def test_the_api_does_not_accept_admin_sessions(client, django_user_model, issuer):
    user = django_user_model.objects.create_user("staff", password="x" * 16, is_staff=True, is_superuser=True)
    client.force_login(user)
    assert client.get("/api/v1/card-products").status_code == 401
