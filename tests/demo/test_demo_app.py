"""The demo issuer app page (/demo/app/, apps/demo/views.py): served only with DEBUG, and in a real
Chromium with a virtual WebAuthn authenticator it registers the browser as the demo cardholder's
device and approves an out-of-band challenge, which the merchant side then sees as Y."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from apps.accounts.roles import ANALYST, ISSUER_ADMIN
from apps.audit.models import AuditEvent
from apps.demo.management.commands import seed_demo
from apps.devices.models import Device, DeviceEnrollment
from apps.threeds.models import Transaction
from apps.threeds.simulator import messages
from apps.threeds.simulator.client import Acs
from apps.threeds.simulator.endpoints import Endpoints
from tests.conftest import PROJECT_ROOT
from tests.factories import CardholderFactory, IssuerFactory, client_for, make_staff, make_superuser
from tests.support.fixtures import CHROMIUM, chromium, in_process_tasks, role_groups, sms_file  # noqa: F401 (fixtures)

APP_PAN = "4000000000001091"  # seed_demo's demo-visa-app, the app cardholder's card
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
PAGE_TIMEOUT_MS = 20_000


def seed() -> None:
    call_command("seed_demo", password="demo-password-for-tests", stdout=StringIO())


def role_clients() -> dict[str, Client]:
    demo = seed_demo_issuer()
    other = IssuerFactory(name="Other Bank")
    return {
        "anonymous": Client(),
        "analyst": client_for(make_staff(demo, ANALYST, "a-analyst")),
        "issuer staff": client_for(make_staff(demo, ISSUER_ADMIN, "a-admin")),
        "other issuer's staff": client_for(make_staff(other, ISSUER_ADMIN, "o-admin")),
        "superuser": client_for(make_superuser()),
    }


def seed_demo_issuer():
    from apps.issuers.models import Issuer

    seed()
    return Issuer.objects.get(issuer_id=seed_demo.ISSUER_ID)


# ---------------------------------------------------------------- served only with DEBUG


@pytest.mark.django_db
def test_without_debug_nothing_of_the_demo_exists_for_anyone(settings):
    settings.DEBUG = False
    for role, client in role_clients().items():
        assert client.get("/demo/app/").status_code == 404, role
        assert client.post("/demo/app/enrollments", {"cardholder": seed_demo.APP_CARDHOLDER}).status_code == 404, role
    assert not DeviceEnrollment.objects.exists()


@pytest.mark.django_db
def test_with_debug_the_page_is_the_cardholders_app_for_anyone(settings):
    """The page plays the cardholder's phone, not a staff screen: the same for every role, and it
    names only the demo issuer's cardholders, their cards by last 4 digits."""
    settings.DEBUG = True
    clients = role_clients()
    CardholderFactory(issuer=IssuerFactory(name="Elsewhere"), name="Someone Else")
    for role, client in clients.items():
        response = client.get("/demo/app/")
        assert response.status_code == 200, role
        page = response.content.decode()
        assert "Hana Kobayashi" in page and "Someone Else" not in page
        assert "•••• 1091" in page and APP_PAN not in page
        assert '<option value="demo-0006" selected>' in page
        assert "<script src=" in page and "<script>" not in page  # CSP: script from a file only


@pytest.mark.django_db
@pytest.mark.parametrize("accept, lang, words", [
    ("ja,en;q=0.5", "ja", ["デモ発行会社アプリ", "このブラウザを登録", "承認する"]),
    ("en-US", "en", ["Demo issuer app", "Register this browser", "Approve"]),
    ("fr-FR", "en", ["Demo issuer app"]),  # the app speaks the demo issuer's languages only
])
def test_the_page_speaks_the_browsers_language(settings, accept, lang, words):
    settings.DEBUG = True
    seed()
    response = Client().get("/demo/app/", HTTP_ACCEPT_LANGUAGE=accept)
    page = response.content.decode()
    assert f'<html lang="{lang}">' in page and response.headers["Content-Language"] == lang
    assert all(word in page for word in words)


@pytest.mark.django_db
def test_the_enrollment_helper_mints_a_token_only_for_a_demo_cardholder(settings):
    settings.DEBUG = True
    seed()
    other = CardholderFactory(issuer=IssuerFactory(name="Elsewhere"), external_id="demo-0006x")
    client = Client()

    for bad in ("", "nobody", other.external_id, "demo-0006' OR 1=1"):
        response = client.post("/demo/app/enrollments", {"cardholder": bad})
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {"cardholder": ["Not a demo cardholder."]}
    assert not DeviceEnrollment.objects.exists()
    assert client.get("/demo/app/enrollments").status_code == 405

    response = client.post("/demo/app/enrollments", {"cardholder": seed_demo.APP_CARDHOLDER})
    assert response.status_code == 201
    enrollment = DeviceEnrollment.objects.get()
    assert enrollment.cardholder.external_id == seed_demo.APP_CARDHOLDER
    assert AuditEvent.objects.filter(actor="demo-app").exists()  # minted like the issuer API's, audited


@pytest.mark.django_db
def test_the_enrollment_helper_wants_the_pages_csrf_token(settings):
    settings.DEBUG = True
    seed()
    client = Client(enforce_csrf_checks=True)
    assert client.post("/demo/app/enrollments", {"cardholder": seed_demo.APP_CARDHOLDER}).status_code == 403
    assert not DeviceEnrollment.objects.exists()


# ---------------------------------------------------------------- Chromium, virtual authenticator


@pytest.fixture
def demo_server(live_server, settings, sms_file):  # noqa: F811
    """seed_demo's data on a live server at http://localhost:<port> with DEBUG on; tasks (the push,
    the RReq) run inline, SMS to a file."""
    assert live_server.url.startswith("http://localhost:")  # WebAuthn's RP id is "localhost"
    settings.DEBUG = True
    settings.PUBLIC_BASE_URL = live_server.url
    settings.PUSH_BACKEND = "console"
    seed()
    return live_server.url


@pytest.fixture
def app_page(chromium):  # noqa: F811
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    page = context.new_page()
    page.problems = []
    # Script errors, CSP refusals, and any answer >= 400 but the favicon's (the page has none).
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    # The browser's own platform authenticator, as a phone's: CTAP2, built in, user verification.
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
    }})
    page.cdp, page.authenticator_id = cdp, authenticator["authenticatorId"]
    yield page
    context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")
def test_the_browser_registers_as_the_device_and_approves_an_oob_challenge_to_y(demo_server, app_page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = app_page
    page.goto(f"{demo_server}/demo/app/")
    page.wait_for_selector("#register:not([hidden])", timeout=PAGE_TIMEOUT_MS)
    assert page.locator("#cardholder").input_value() == seed_demo.APP_CARDHOLDER
    page.screenshot(path=str(SCREENSHOTS / "demo-app-1-not-registered.png"))

    # Register: the enrollment token, then WebAuthn create() through the SDK API.
    page.click("#register")
    page.wait_for_selector("#device-status.ok", timeout=PAGE_TIMEOUT_MS)
    assert "Registered" in page.inner_text("#device-status")
    device = Device.objects.get(cardholder__external_id=seed_demo.APP_CARDHOLDER)
    assert device.status == Device.STATUS_ACTIVE
    registered_count = device.sign_count
    credentials = page.cdp.send("WebAuthn.getCredentials", {"authenticatorId": page.authenticator_id})["credentials"]
    assert len(credentials) == 1 and credentials[0]["rpId"] == "localhost"
    page.screenshot(path=str(SCREENSHOTS / "demo-app-2-registered.png"))

    with Endpoints() as endpoints:
        # The merchant side: a browser AReq that asks for a challenge, then the challenge page.
        acs = Acs(demo_server, endpoints)
        auth = acs.areq(pan=APP_PAN, channel=messages.BROWSER, threeDSRequestorChallengeInd="04",
                        merchantName="Tokyo Books", purchaseAmount="4800", purchaseCurrency="392", purchaseExponent="0")
        assert auth.trans_status == "C"
        merchant = auth.browser()
        waiting = merchant.start()
        assert not waiting.is_final and waiting.form_with("challengeDataEntry") is None  # out of band, not SMS

        # The app page's poll shows the request with its confirmation data.
        page.wait_for_selector(f'li.request[data-acs-trans-id="{auth.acs_trans_id}"]', timeout=PAGE_TIMEOUT_MS)
        request = page.locator("li.request")
        assert request.locator(".merchant").inner_text() == "Tokyo Books"
        assert "4,800" in request.locator(".amount").inner_text()
        assert "•••• 1091" in request.locator(".details").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "demo-app-3-pending.png"))

        # Approve: WebAuthn get() over the transaction-bound challenge, the assertion verified.
        request.locator("button.approve").click()
        page.wait_for_selector("#outcome.ok", timeout=PAGE_TIMEOUT_MS)
        assert "Y" in page.inner_text("#outcome")
        page.wait_for_selector("#pending-empty:not([hidden])", timeout=PAGE_TIMEOUT_MS)
        page.screenshot(path=str(SCREENSHOTS / "demo-app-4-approved.png"))

        # The merchant side sees Y: the challenge page moves on, the final CRes and the RReq say so.
        final = merchant.act("continue", "the app approved")
        assert final.is_final
        cres = merchant.post_final().cres
        assert cres["transStatus"] == "Y"
        assert auth.rreq()["transStatus"] == "Y"

    tx = Transaction.objects.get(pk=auth.acs_trans_id)
    assert tx.trans_status == "Y" and tx.challenge.method == "oob"
    device.refresh_from_db()
    assert device.sign_count > registered_count  # the approval was this authenticator's signature
    assert page.problems == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")
@pytest.mark.parametrize("channel", ["app", "browser"])
def test_simulate_3ds_waits_for_the_app_page(demo_server, app_page, settings, channel):
    """What the README shows: simulate_3ds with the app cardholder's card waits while the person
    approves in the demo app page, and ends Y (the app channel's CReqs, the browser's page)."""
    page = app_page
    page.goto(f"{demo_server}/demo/app/")
    page.click("#register")
    page.wait_for_selector("#device-status.ok", timeout=PAGE_TIMEOUT_MS)

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "issuer_portal.settings_test", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "manage.py", "simulate_3ds", "--base-url", demo_server, "--sms-file", settings.SMS_FILE_PATH,
               "--channel", channel, "--pan", APP_PAN, "--challenge", "--oob-timeout", "60", "--rreq-timeout", "20"]
    with subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            page.wait_for_selector("li.request button.approve", timeout=PAGE_TIMEOUT_MS)
            page.click("li.request button.approve")
            page.wait_for_selector("#outcome.ok", timeout=PAGE_TIMEOUT_MS)
            out, err = process.communicate(timeout=90)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, out[-3000:] + err[-3000:]
    assert "Waiting for the issuer app" in out and "/demo/app/" in out
    if channel == "app":
        assert '"acsUiType": "04"' in out
    assert "Result: transStatus Y (after a challenge)" in out
    assert APP_PAN not in out + err
    assert page.problems == []
