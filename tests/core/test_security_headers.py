"""Security headers (SPEC §4, §7): `manage.py check --deploy` is clean under production settings;
an https PUBLIC_BASE_URL turns on the proxy's X-Forwarded-Proto, the https redirect and HSTS; one
Content-Security-Policy mechanism for the whole site, with the challenge page framable by any
merchant and everything else never framed."""

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def production_env(**overrides) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SECURE_", "DJANGO_SETTINGS"))}
    # The test settings' own outbound defaults (local fake servers) are not production's.
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "TEST_RUN_ID", "OUTBOUND_ALLOW_PRIVATE", "DS_URL_ALLOWLIST"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="issuer_portal.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        DATA_ENCRYPTION_KEYS="p1:" + base64.b64encode(os.urandom(32)).decode(),
        PAN_FINGERPRINT_KEY=secrets.token_urlsafe(32),
        AUTHENTICATION_VALUE_KEYS="pav1:" + base64.b64encode(os.urandom(32)).decode(),
        PUBLIC_BASE_URL="https://acs.bank.example",
        ALLOWED_HOSTS="acs.bank.example",
        DS_URL_ALLOWLIST="https://ds.network.example/",
        LOG_LEVEL="WARNING",
    )
    env.update(overrides)
    return env


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_check_deploy_is_clean_under_production_settings():
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_deploy_still_catches_a_production_mistake():
    # The test above means something: plain http in production is reported.
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(PUBLIC_BASE_URL="http://acs.bank.example"))
    assert done.returncode != 0 and "security.W004" in done.stderr + done.stdout


SHOW = (
    "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({"
    "'proxy': s.SECURE_PROXY_SSL_HEADER, 'redirect': s.SECURE_SSL_REDIRECT, 'hsts': s.SECURE_HSTS_SECONDS,"
    "'subdomains': s.SECURE_HSTS_INCLUDE_SUBDOMAINS, 'cookies': s.SESSION_COOKIE_SECURE}))"
)


def settings_under(**env) -> dict:
    done = run(["-c", SHOW], production_env(**env))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_https_public_url_turns_on_tls_settings():
    assert settings_under() == {
        "proxy": ["HTTP_X_FORWARDED_PROTO", "https"], "redirect": True, "hsts": 31_536_000, "subdomains": True, "cookies": True,
    }


def test_each_tls_setting_can_be_set_on_its_own():
    values = settings_under(SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="3600", SECURE_PROXY_SSL_HEADER="0")
    assert (values["proxy"], values["redirect"], values["hsts"]) == (None, False, 3600)
    assert settings_under(PUBLIC_BASE_URL="http://127.0.0.1:8000")["hsts"] == 0


@pytest.fixture
def tls_settings(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    return settings


@pytest.mark.django_db
def test_behind_the_tls_proxy_https_gets_hsts_and_http_is_redirected(tls_settings):
    client = Client()
    redirected = client.get("/admin/login/")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")
    served = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert served.status_code == 200
    assert served["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # Probes talk to the process directly over http.
    assert client.get("/healthz").status_code == 200


# ---------------------------------------------------------------- Content-Security-Policy

STRICT = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/", "/admin/", "/analyst/", "/no-such-page", "/healthz", "/api/v1/cardholders", "/api/schema/"])
def test_every_other_response_has_the_strict_policy_and_is_never_framed(client, path):
    response = client.get(path)
    assert response["Content-Security-Policy"].startswith(STRICT)
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_an_admin_page_carries_the_policy_when_signed_in(admin_client):
    response = admin_client.get("/admin/cards/cardholder/")
    assert response.status_code == 200 and response["Content-Security-Policy"].startswith(STRICT)


@pytest.mark.django_db
def test_swagger_ui_has_its_own_policy_and_no_inline_script(client):
    page = client.get("/api/docs/")
    csp = page["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "style-src 'self' 'unsafe-inline'" in csp and "frame-ancestors 'none'" in csp
    html = page.content.decode()
    assert "<script>" not in html  # every script is a file
    script = html.split('<script src="')[-1].split('"')[0].replace("&amp;", "&")
    assert client.get(script)["Content-Type"].startswith("application/javascript")


def test_the_challenge_page_is_framable_by_any_merchant(client):
    # SPEC §3.2: the page loads inside the merchant's iframe (tests/threeds check the full page).
    response = client.get("/3ds/v2/challenge")
    assert "X-Frame-Options" not in response
    assert "frame-ancestors *" in response["Content-Security-Policy"]


def test_the_wsgi_application_starts_under_production_settings():
    done = run(["-c", "import issuer_portal.wsgi; print('started')"], production_env())
    assert done.returncode == 0 and "started" in done.stdout, done.stderr


def test_the_wsgi_application_refuses_to_start_when_a_system_check_fails():
    # gunicorn does not run the checks itself: a failing one (e.g. threeds.E001, the AReq's fast
    # path unable to write a model) must stop the start, not surface as AReqs answered U.
    failing = (
        "from django.core import checks\n"
        "checks.register(lambda app_configs, **kwargs: [checks.Error('broken on purpose', id='tests.E999')])\n"
        "import issuer_portal.wsgi\n"
        "print('started')\n"
    )
    done = run(["-c", failing], production_env())
    assert done.returncode != 0 and "started" not in done.stdout
    assert "tests.E999" in done.stderr and "not starting" in done.stderr
