"""`manage.py simulate_3ds` against the demo as a newcomer runs it: no flags (the server from PORT /
PUBLIC_BASE_URL, the codes from SMS_FILE_PATH), and words
for what went wrong (an SMS limit named, an unreachable server)."""

import os
import re
import socket
import subprocess
import sys
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from apps.issuers.models import Issuer
from apps.otp.models import OtpPolicy
from apps.otp.services import otp_policy_save
from tests.conftest import PROJECT_ROOT
from tests.support.fixtures import in_process_tasks, sms_file  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(live_server, settings, sms_file):  # noqa: F811
    """seed_demo's data on a live server whose tasks run inline, SMS to the file backend."""
    settings.PUBLIC_BASE_URL = live_server.url
    out = StringIO()
    call_command("seed_demo", stdout=out)
    api_key = re.search(r"API key:\s+(\S+)", out.getvalue()).group(1)
    return live_server.url, api_key, settings.SMS_FILE_PATH


def simulate(*args: str, **env_changes: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_BASE_URL", "PORT", "SMS_FILE_PATH")}
    env.update({"DJANGO_SETTINGS_MODULE": "issuer_portal.settings_test", "PYTHONUNBUFFERED": "1"}, **env_changes)
    return subprocess.run(
        [sys.executable, "manage.py", "simulate_3ds", "--sms-timeout", "20", "--rreq-timeout", "20", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180,
    )


def test_without_flags_it_finds_the_server_by_port_and_the_code_in_the_sms_file(demo):
    base_url, _api_key, sms_path = demo
    port = str(urlsplit(base_url).port)

    result = simulate("--challenge", PORT=port, SMS_FILE_PATH=sms_path)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"ACS under test:  http://127.0.0.1:{port}" in result.stdout
    assert f"Cardholder reads the SMS  ({sms_path})" in result.stdout
    assert "Result: transStatus Y (after a challenge)" in result.stdout


def test_an_sms_limit_is_named_when_it_is_hit(demo):
    base_url, api_key, sms_path = demo
    policy = OtpPolicy.objects.get(issuer=Issuer.objects.get(issuer_id="DEMOBANK01"), product=None)
    policy.max_sends_per_card_hour = 1
    otp_policy_save(policy=policy, actor="tests")

    first = simulate("--challenge", "--base-url", base_url, "--sms-file", sms_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = simulate("--challenge", "--base-url", base_url, "--sms-file", sms_path, "--api-key", api_key)

    assert second.returncode == 2
    said = second.stdout + second.stderr
    assert "ended N/13: Cardholder not enrolled in service" in said
    assert "limit of codes per card per hour was reached (max_sends_per_card_hour)" in said
    assert "expected success" not in said and "4111111111111111" not in said


def test_an_unreachable_server_is_said_in_words():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there

    result = simulate("--challenge", PORT=str(port))

    assert result.returncode == 1
    assert f"Cannot reach the ACS at http://127.0.0.1:{port}" in result.stderr
    assert "Is the server running there?" in result.stderr and "Traceback" not in result.stderr
