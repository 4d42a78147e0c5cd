"""Throttling of the machine APIs (SPEC §4): wrong API keys, device tokens and enrollment tokens
per client address → 429 with Retry-After in the §4 error shape; a right credential from that
address is refused too while it lasts, and other addresses are not affected. Per-key rates. The
real cache (local memory, or Redis when CACHE_URL is set); a cache that is down never gives 500."""

import pytest

from tests.conftest import JsonClient
from tests.devices.authenticator import SoftwareAuthenticator
from tests.devices.conftest import RP_ID, WEB_ORIGIN, enroll, options, register

pytestmark = pytest.mark.django_db
LIMIT = 20  # FAILED_CREDENTIALS_RATE's default, "20/min"
ATTACKER = "203.0.113.7"
OTHER = "198.51.100.20"


def client_from(address: str, authorization: str | None = None, **extra) -> JsonClient:
    client = JsonClient(REMOTE_ADDR=address, **extra)
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client


def assert_throttled(response):
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == "throttled" and body["error"]["message"]
    assert 1 <= int(response["Retry-After"]) <= 60


def test_the_21st_wrong_api_key_is_429_and_the_right_key_from_there_too(api_key):
    wrong = client_from(ATTACKER, "Bearer ik_nope_" + "x" * 30)
    for _ in range(LIMIT):
        assert wrong.get("/api/v1/cardholders").status_code == 401
    assert_throttled(wrong.get("/api/v1/cardholders"))
    # While the address is blocked a right key is refused too: guessing learns nothing.
    assert_throttled(client_from(ATTACKER, f"Bearer {api_key}").get("/api/v1/cardholders"))
    # Another address is not affected.
    assert client_from(OTHER, f"Bearer {api_key}").get("/api/v1/cardholders").status_code == 200


def test_right_keys_are_never_counted(api_key):
    right = client_from(ATTACKER, f"Bearer {api_key}")
    for _ in range(LIMIT + 5):
        assert right.get("/api/v1/cardholders").status_code == 200


def test_malformed_authorization_headers_count_as_failures(api_key):
    for header in ("Basic abc", "Bearer ") * (LIMIT // 2):
        assert client_from(ATTACKER, header).get("/api/v1/cardholders").status_code == 401
    assert_throttled(client_from(ATTACKER, f"Bearer {api_key}").get("/api/v1/cardholders"))


def test_the_21st_wrong_device_token_is_429():
    wrong = client_from(ATTACKER, "Device not-a-real-device-token")
    for _ in range(LIMIT):
        assert wrong.get("/sdk/v1/authn-requests").status_code == 401
    assert_throttled(wrong.get("/sdk/v1/authn-requests"))
    assert_throttled(wrong.delete("/sdk/v1/registrations/current"))
    assert client_from(OTHER, "Device not-a-real-device-token").get("/sdk/v1/authn-requests").status_code == 401


@pytest.fixture
def webauthn_issuer(issuer):
    issuer.webauthn_rp_id = RP_ID
    issuer.webauthn_origins = [WEB_ORIGIN]
    issuer.save(update_fields=["webauthn_rp_id", "webauthn_origins"])
    return issuer


def test_the_21st_wrong_enrollment_token_is_429_even_for_a_right_token(api, cardholder, webauthn_issuer):
    token = enroll(api, cardholder)
    sdk = client_from(ATTACKER)
    for _ in range(LIMIT):
        r = sdk.post("/sdk/v1/registrations/options", {"enrollment_token": "guess-" + "x" * 20})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_enrollment_token"
    assert_throttled(sdk.post("/sdk/v1/registrations/options", {"enrollment_token": token}))
    assert_throttled(sdk.post("/sdk/v1/registrations", {"enrollment_token": token}))
    # The cardholder's phone, elsewhere, registers normally.
    phone = client_from(OTHER)
    credential = SoftwareAuthenticator().create(options(phone, token), origin=WEB_ORIGIN)
    assert register(phone, token, credential).status_code == 201


def test_behind_a_trusted_proxy_each_client_is_counted_apart(settings, api_key):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.5"

    def via_proxy(forwarded: str, key: str) -> JsonClient:
        return client_from(proxy, f"Bearer {key}", HTTP_X_FORWARDED_FOR=forwarded)

    # The attacker writes its own X-Forwarded-For; the proxy appends the real address.
    for i in range(LIMIT):
        assert via_proxy(f"192.0.2.{i}, {ATTACKER}", "ik_nope_" + "y" * 30).get("/api/v1/cardholders").status_code == 401
    assert_throttled(via_proxy(f"192.0.2.99, {ATTACKER}", api_key).get("/api/v1/cardholders"))
    assert via_proxy(OTHER, api_key).get("/api/v1/cardholders").status_code == 200


def test_without_trusted_proxies_x_forwarded_for_is_ignored(api_key):
    for i in range(LIMIT):
        assert client_from(ATTACKER, "Bearer ik_nope_" + "z" * 30, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").get(
            "/api/v1/cardholders"
        ).status_code == 401
    assert_throttled(client_from(ATTACKER, f"Bearer {api_key}", HTTP_X_FORWARDED_FOR=OTHER).get("/api/v1/cardholders"))


def test_the_per_key_rate(settings, api_key, other_issuer):
    from tests.factories import make_api_key

    settings.API_KEY_RATE = "5/min"
    busy = client_from(ATTACKER, f"Bearer {api_key}")
    for _ in range(5):
        assert busy.get("/api/v1/cardholders").status_code == 200
    assert_throttled(busy.get("/api/v1/cardholders"))
    # Another key of another issuer, from the same address, has its own budget.
    assert client_from(ATTACKER, f"Bearer {make_api_key(other_issuer)}").get("/api/v1/cardholders").status_code == 200


def test_a_cache_that_is_down_lets_the_api_work_without_a_500(settings, api_key, caplog):
    # Nothing listens on port 1: every cache call fails (fast, 1 s timeouts).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "KEY_PREFIX": "down",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    assert client_from(ATTACKER, "Bearer ik_nope_" + "x" * 30).get("/api/v1/cardholders").status_code == 401
    assert client_from(ATTACKER, f"Bearer {api_key}").get("/api/v1/cardholders").status_code == 200
    assert "cache unavailable" in caplog.text
