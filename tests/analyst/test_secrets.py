"""No page and no export ever shows the PAN, an OTP or the authentication value (SPEC §7.1,
§7.2), for transactions made by the real flow: SMS sent by the service, and DeliverOTP."""

import csv
import io
import json

import pytest

from apps.cards.models import Phone
from apps.threeds.models import RiskPolicy
from apps.webhooks.models import WebhookDelivery
from tests.analyst.conftest import client_for, make_staff
from tests.analyst.flows import Secrets, code_in, eight_digit_codes, finished, wrong
from tests.factories import CardholderFactory, make_card
from tests.support.fixtures import in_process_tasks, sms_file  # noqa: F401 (fixtures)
from tests.support.app_session import AppSession
from tests.webhooks.conftest import receiver, webhook_issuer  # noqa: F401  (fixtures)
from apps.accounts.roles import ANALYST

pytestmark = pytest.mark.django_db

PAN = "4111111111111111"


def AppChallenge(client, capture, pan) -> AppSession:  # noqa: N802 (reads as the flow it starts)
    """The 3DS SDK of the app channel (tests.support.app_session): AReq, then JWE CReqs with
    advancing counters, each request's on-commit work run."""
    session = AppSession(client, around=lambda: capture(execute=True))
    ares = session.areq(pan=pan, threeDSRequestorChallengeInd="04", dsURL="http://127.0.0.1:9/rreq")
    assert ares["transStatus"] == "C", ares
    return session


def pages_of(client, acs_trans_id) -> dict[str, str]:
    pages = {
        "list": client.get("/analyst/").content.decode(),
        "list filtered": client.get("/analyst/", {"method": "sms_otp", "trans_status": "Y"}).content.decode(),
        "detail": client.get(f"/analyst/transactions/{acs_trans_id}/").content.decode(),
        "dashboard": client.get("/analyst/dashboard/").content.decode(),
        "dashboard by hour": client.get("/analyst/dashboard/", {"granularity": "hour"}).content.decode(),
    }
    export = client.get("/analyst/transactions.csv")
    pages["export"] = b"".join(export.streaming_content).decode()
    return pages


@pytest.fixture
def provider_mode(cardholder, settings):
    settings.OUTBOUND_MAX_TRIES = 1  # the DS at 127.0.0.1:9 refuses: one RReq try is enough here
    make_card(cardholder=cardholder, pan=PAN)
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True)
    RiskPolicy.objects.create(issuer=cardholder.issuer, new_merchant_weight=0)
    eight_digit_codes(cardholder.issuer)


def test_an_sms_otp_challenge_shows_no_pan_no_code_no_authentication_value(
    client, provider_mode, sms_file, analyst_client, django_capture_on_commit_callbacks
):
    flow = AppChallenge(client, django_capture_on_commit_callbacks, PAN)
    flow.send()
    first = code_in(sms_file.messages()[-1]["body"])
    assert "2 attempt" in flow.send(challengeDataEntry=wrong(first))["challengeInfoText"]
    assert flow.send(challengeDataEntry=first)["transStatus"] == "Y"
    tx = finished(flow.ares["acsTransID"])
    secrets = Secrets(pan=PAN, codes=[first, wrong(first)], authentication_value=tx.authentication_value)
    assert len(tx.authentication_value) == 28

    for name, text in pages_of(analyst_client, tx.acs_trans_id).items():
        assert secrets.found_in(text) == [], name
    detail = analyst_client.get(f"/analyst/transactions/{tx.acs_trans_id}/").content.decode()
    assert "•••• 1111" in detail and "issued (not shown)" in detail
    assert "otp.wrong_code" in detail and "otp.verified" in detail


def test_a_deliver_otp_challenge_never_shows_the_payload_or_the_code(
    client, webhook_issuer, receiver, in_process_tasks, settings, django_capture_on_commit_callbacks  # noqa: F811
):
    settings.OUTBOUND_MAX_TRIES = 1
    cardholder = CardholderFactory(issuer=webhook_issuer)
    pan = "4000000000000002"
    make_card(cardholder=cardholder, pan=pan)
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True)
    RiskPolicy.objects.create(issuer=webhook_issuer, new_merchant_weight=0)
    eight_digit_codes(webhook_issuer, delivery_mode="issuer")

    flow = AppChallenge(client, django_capture_on_commit_callbacks, pan)
    flow.send()
    deliver_otp = [r for r in receiver.received if r.path == "/deliver-otp"]
    code = json.loads(deliver_otp[-1].body)["otp"]
    assert flow.send(challengeDataEntry=code)["transStatus"] == "Y"
    tx = finished(flow.ares["acsTransID"])
    assert WebhookDelivery.objects.filter(acs_trans_id=tx.acs_trans_id, kind="deliver_otp").exists()

    analyst = client_for(make_staff(webhook_issuer, ANALYST, username="analyst-webhooks"))
    secrets = Secrets(pan=pan, codes=[code], authentication_value=tx.authentication_value)
    for name, text in pages_of(analyst, tx.acs_trans_id).items():
        assert secrets.found_in(text) == [], name
    detail = analyst.get(f"/analyst/transactions/{tx.acs_trans_id}/").content.decode()
    assert "DeliverOTP queued" in detail and "DeliverOTP try 1" in detail
    assert "maskedPhone" not in detail and "otpExpiresAt" not in detail  # no part of its payload


def test_the_export_has_no_pan_column_and_no_authentication_value(
    client, provider_mode, sms_file, analyst_client, django_capture_on_commit_callbacks
):
    flow = AppChallenge(client, django_capture_on_commit_callbacks, PAN)
    flow.send()
    flow.send(challengeDataEntry=code_in(sms_file.messages()[-1]["body"]))
    export = analyst_client.get("/analyst/transactions.csv")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    header = rows[0]
    assert not {"pan", "acct_number", "authentication_value", "otp"} & set(header)
    assert rows[1][header.index("card_last4")] == "1111"
