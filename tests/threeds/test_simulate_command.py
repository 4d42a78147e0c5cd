"""`manage.py simulate_3ds` as a user runs it: a subprocess against a running server.

The server is pytest-django's `live_server`, in this process, so its settings are this process's:
SMS go to the `file` backend and tasks run in-process (eager), so the SMS is written and the RReq
sent by the server itself, to the command's own dsURL. The demo data is seed_demo's, which is
what the command's defaults (the demo Visa card) are made for.
"""

import json
import os
import re
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command

from apps.threeds.models import RReqDelivery, Transaction
from tests.conftest import PROJECT_ROOT
from tests.support.fixtures import in_process_tasks  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

DEMO_PAN = "4111111111111111"  # seed_demo's demo-visa-1, the command's default card
MASKED = "••••••••••••1111"


@pytest.fixture
def server(live_server, settings, tmp_path, in_process_tasks):  # noqa: F811
    """The demo data on a live server whose tasks run inline in its thread, SMS to a file."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.SMS_BACKEND = "file"
    settings.SMS_FALLBACK_BACKEND = ""
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    out = StringIO()
    call_command("seed_demo", password="demo-password-for-tests", stdout=out)
    api_key = re.search(r"API key:\s+(\S+)", out.getvalue()).group(1)
    return live_server.url, api_key, tmp_path / "sms.jsonl"


def simulate(base_url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "issuer_portal.settings_test", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "manage.py", "simulate_3ds", "--base-url", base_url, "--sms-timeout", "20", "--rreq-timeout", "20", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def json_after(output: str, heading: str, label: str) -> dict:
    """The JSON document printed under `label:` after the step line containing `heading`."""
    start = output.index(heading)
    start = output.index(label + ":\n", start) + len(label) + 2
    return json.JSONDecoder().raw_decode(output[start:])[0]


def sms_codes(path) -> list[str]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [re.search(r"\b(\d{6})\b", line["body"]).group(1) for line in lines]


def test_an_app_challenge_runs_end_to_end_and_prints_every_step(server):
    base_url, api_key, sms_file = server
    result = simulate(base_url, "--sms-file", str(sms_file), "--challenge", "--api-key", api_key)
    output = result.stdout
    assert result.returncode == 0, output[-3000:] + result.stderr[-3000:]

    # No PAN anywhere, masked to its last 4 digits where the AReq shows it.
    assert DEMO_PAN not in output and DEMO_PAN not in result.stderr
    areq = json_after(output, "DS → ACS: AReq", "AReq")
    assert areq["acctNumber"] == MASKED and areq["threeDSRequestorChallengeInd"] == "04" and areq["deviceChannel"] == "01"

    ares = json_after(output, "ACS → DS: ARes", "ARes")
    assert ares["transStatus"] == "C" and ares["threeDSServerTransID"] == areq["threeDSServerTransID"]
    first = json_after(output, "ACS → 3DS SDK: CRes #0", "CRes")
    assert (first["acsUiType"], first["challengeCompletionInd"]) == ("01", "N")

    # The code printed is the one the server wrote to the SMS file, and the one sent back.
    [code] = sms_codes(sms_file)
    assert re.search(r"SMS to \+81 ••• •••• 5678: code " + code, output)
    assert json_after(output, "CReq #1", "CReq")["challengeDataEntry"] == code
    final = json_after(output, "ACS → 3DS SDK: CRes #1", "CRes")
    assert (final["transStatus"], final["challengeCompletionInd"], final["acsCounterAtoS"]) == ("Y", "Y", "001")

    rreq = json_after(output, "RReq received at dsURL", "RReq")
    assert (rreq["transStatus"], rreq["eci"], rreq["acsTransID"]) == ("Y", "05", ares["acsTransID"])
    assert '"resultsStatus": "01"' in output

    stripe = json.JSONDecoder().raw_decode(output[output.index("HTTP 200", output.index("Stripe import")) + 9:])[0]
    three_d_secure = stripe["payment_method_options"]["card"]["three_d_secure"]
    assert three_d_secure["cryptogram"] == rreq["authenticationValue"] and three_d_secure["transaction_id"] == areq["dsTransID"]
    assert f"Result: transStatus Y (after a challenge), acsTransID {ares['acsTransID']}" in output

    # What the server recorded agrees, and the command's DS acknowledged the RReq.
    tx = Transaction.objects.get(pk=ares["acsTransID"])
    assert (tx.trans_status, tx.authentication_value) == ("Y", rreq["authenticationValue"])
    delivery = RReqDelivery.objects.get(transaction=tx)
    assert (delivery.status, delivery.results_status) == (RReqDelivery.SUCCEEDED, "01")


def test_a_browser_challenge_with_a_wrong_code_first(server):
    base_url, api_key, sms_file = server
    result = simulate(base_url, "--channel", "browser", "--sms-file", str(sms_file), "--challenge", "--wrong-codes", "1")
    output = result.stdout
    assert result.returncode == 0, output[-3000:] + result.stderr[-3000:]
    assert DEMO_PAN not in output + result.stderr

    areq = json_after(output, "DS → ACS: AReq", "AReq")
    assert areq["deviceChannel"] == "02" and areq["acctNumber"] == MASKED
    assert "Merchant page → ACS: form post of the CReq" in output
    assert "That code is not right" in output or "attempt" in output
    [code] = sms_codes(sms_file)
    assert f"code {code}" in output
    cres = json_after(output, "Merchant (notificationURL) received the final CRes", "CRes")
    assert (cres["transStatus"], cres["challengeCompletionInd"]) == ("Y", "Y")
    assert "threeDSSessionData came back untouched." in output
    rreq = json_after(output, "RReq received at dsURL", "RReq")
    assert (rreq["transStatus"], rreq["interactionCounter"]) == ("Y", "02")
    assert "Result: transStatus Y" in output


def test_frictionless_needs_no_code(server):
    base_url, api_key, sms_file = server
    result = simulate(base_url, "--sms-file", str(sms_file), "--api-key", api_key)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ares = json_after(result.stdout, "ACS → DS: ARes", "ARes")
    assert ares["transStatus"] == "Y" and len(ares["authenticationValue"]) == 28
    assert "no RReq follows" in result.stdout and "cryptogram" in result.stdout
    assert not sms_file.exists()
    assert DEMO_PAN not in result.stdout + result.stderr


def test_a_cancel_ends_n_with_challenge_cancel_01(server):
    base_url, _api_key, sms_file = server
    result = simulate(base_url, "--sms-file", str(sms_file), "--challenge", "--cancel")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rreq = json_after(result.stdout, "RReq received at dsURL", "RReq")
    assert (rreq["transStatus"], rreq["challengeCancel"]) == ("N", "01")


def test_an_unexpected_result_exits_non_zero_without_printing_the_pan(server):
    base_url, _api_key, sms_file = server
    unknown = "4000000000000002"
    result = simulate(base_url, "--pan", unknown, "--sms-file", str(sms_file))
    assert result.returncode == 2
    assert "\"transStatusReason\": \"08\"" in result.stdout and "ended N/08: No card record — not Y or A" in result.stdout + result.stderr
    assert unknown not in result.stdout + result.stderr


def test_an_unreachable_server_exits_1(server, tmp_path):
    _base_url, _api_key, sms_file = server
    result = simulate("http://127.0.0.1:9", "--sms-file", str(sms_file), timeout=60)
    assert result.returncode == 1
    assert "Cannot reach the ACS at" in result.stderr and "AReq: could not reach" in result.stderr
    assert DEMO_PAN not in result.stdout + result.stderr
