import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.django_db


def test_healthz_says_the_process_is_up(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client, settings):
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == ("ok" if settings.CELERY_BROKER_URL else "in-process")


def test_readyz_is_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["broker"].startswith("unavailable")


def _check(env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATA_ENCRYPTION_KEYS", "PAN_FINGERPRINT_KEY", "AUTHENTICATION_VALUE_KEYS", "DEBUG")}
    env.update(env_overrides, DJANGO_SETTINGS_MODULE="issuer_portal.settings")
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_on_development_keys():
    result = _check({"DEBUG": "0"})
    assert result.returncode != 0
    assert "Refusing to start with DEBUG off on development keys" in result.stderr
    assert "SECRET_KEY" in result.stderr and "DATA_ENCRYPTION_KEYS" in result.stderr


def test_production_starts_with_real_keys():
    result = _check(
        {
            "DEBUG": "0",
            "SECRET_KEY": "a-real-secret-key-of-enough-length-0123456789abcdef",
            "DATA_ENCRYPTION_KEYS": "k1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
            "PAN_FINGERPRINT_KEY": "a-real-fingerprint-key",
            "AUTHENTICATION_VALUE_KEYS": "av1:" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=",
        }
    )
    assert result.returncode == 0, result.stderr


def test_development_runs_on_development_keys():
    assert _check({"DEBUG": "1"}).returncode == 0


def test_the_openapi_schema_and_swagger_ui_are_served_offline(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/cardholders", "/api/v1/cards", "/api/v1/card-products", "Idempotency-Key"):
        assert path in text
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    # Assets come from this server (the sidecar), never from a CDN.
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    asset = next(part.split('"')[0] for part in html.split('src="')[1:] if "swagger-ui" in part)
    assert client.get(asset).status_code == 200
