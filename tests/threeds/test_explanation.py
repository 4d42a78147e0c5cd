"""Every outcome explained in words (issue 14 item 3): `explanation` in GET
/api/v1/transactions/{acsTransID}, made by apps.threeds.explanation from what the AReq and the
challenge recorded. Transactions are made through the real AReq and browser challenge page."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from apps.cards.models import Card, Phone
from apps.threeds.challenge import challenges_time_out
from apps.threeds.explanation import explain, explanation_for
from apps.threeds.models import AcsSigningKey, RiskPolicy, Transaction
from apps.threeds.simulator.client import Acs as Simulator
from apps.threeds.simulator.messages import BROWSER
from apps.threeds.simulator.messages import wrong_code as wrong
from apps.threeds.simulator.transport import DjangoClientTransport
from tests.otp.conftest import policy, set_policy  # noqa: F401 (fixtures)
from tests.support.app_session import AppSession
from tests.threeds.builders import areq
from tests.threeds.harness import endpoints  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
PAN = "4111111111111111"


def send(client, **elements) -> Transaction:
    ares = client.post("/3ds/v2/areq", areq(pan=PAN, **elements), content_type="application/json").json()
    return Transaction.objects.get(acs_trans_id=ares["acsTransID"])


def explanation(api, acs_trans_id) -> str:
    r = api.get(f"/api/v1/transactions/{acs_trans_id}")
    assert r.status_code == 200, r.content
    return r.json()["explanation"]


@pytest.fixture
def lenient(issuer):
    """Ordinary purchases go through; indicator 04 forces a challenge."""
    return RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)


# ---------------------------------------------------------------- decided at the AReq


def test_frictionless_says_the_score_and_the_threshold(client, api, card, lenient):
    tx = send(client)
    text = explanation(api, tx.acs_trans_id)
    assert tx.trans_status == "Y"
    assert "Frictionless: the risk score 10 is below the challenge threshold 50" in text
    assert "Risk score 10 (challenge threshold 50): base 10." in text
    assert explanation_for(tx).outcome == "frictionless"


def test_the_score_lists_the_rules_that_fired(client, api, card, issuer):
    RiskPolicy.objects.create(issuer=issuer, challenge_threshold=90)  # new merchant +30, still frictionless
    text = explanation(api, send(client).acs_trans_id)
    assert "base 10, first authentication of the card at this merchant +30." in text


def test_an_amount_rule_shows_the_threshold_in_its_currency(client, api, card, phone, issuer):
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, amount_thresholds={"392": "1000"})
    tx = send(client)  # ¥1,500
    text = explanation(api, tx.acs_trans_id)
    assert "the risk score 70 reached the challenge threshold 50" in text
    assert "base 10, amount over ¥1,000 +60." in text


def test_an_unverified_only_phone_and_no_device_is_declined_by_policy(client, api, card, cardholder, issuer, lenient):
    issuer.webauthn_rp_id, issuer.webauthn_origins = "bank.example", ["https://bank.example"]
    issuer.save(update_fields=["webauthn_rp_id", "webauthn_origins"])
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=False)
    tx = send(client, threeDSRequestorChallengeInd="04")
    assert (tx.trans_status, tx.trans_status_reason) == ("N", "13")
    text = explanation(api, tx.acs_trans_id)
    assert "the 3DS Requestor mandated a challenge" in text
    assert "the cardholder's phone is not verified" in text
    assert "no device is enrolled in the issuer's app" in text
    assert "Declined by policy (N / 13)." in text


def test_the_decision_is_recorded_once_on_the_transaction(client, card, cardholder, issuer, lenient, django_assert_num_queries):
    """Threshold and why no method are in the transaction's risk_facts with the facts the backtest
    replays: explaining a decision made at the AReq reads no audit event."""
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=False)
    tx = send(client, threeDSRequestorChallengeInd="04")
    assert tx.risk_facts["threshold"] == 50
    assert tx.risk_facts["no_method"]["sms"] == "phone_unverified"
    assert {"recent_count", "merchant_known", "browser_mismatches"} <= set(tx.risk_facts)
    tx = Transaction.objects.select_related("card").get(pk=tx.pk)
    with django_assert_num_queries(1):  # the challenge's reverse one-to-one, nothing else
        text = explain(tx)
    assert "the cardholder's phone is not verified" in text


def test_transactions_recorded_before_read_the_audit_event(client, card, cardholder, lenient):
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=False)
    tx = send(client, threeDSRequestorChallengeInd="04")
    Transaction.objects.filter(pk=tx.pk).update(risk_facts={"recent_count": 0, "merchant_known": True, "browser_mismatches": []})
    tx.refresh_from_db()
    text = explain(tx)
    assert "the cardholder's phone is not verified" in text
    assert "Declined by policy (N / 13)." in text


def test_no_phone_at_all_is_said_too(client, api, card, lenient):
    text = explanation(api, send(client, threeDSRequestorChallengeInd="04").acs_trans_id)
    assert "no phone is enrolled for an SMS code" in text and "(N / 13)" in text
    assert "app (OOB) authentication is not configured for the issuer" in text


def test_an_attempt_policy_says_it_answered_a(client, api, card, issuer):
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, no_method_outcome="A")
    tx = send(client, threeDSRequestorChallengeInd="04")
    assert tx.trans_status == "A"
    assert "The policy answers an attempt instead (A)." in explanation(api, tx.acs_trans_id)


@pytest.mark.parametrize("status, words, code", [
    (Card.SUSPENDED, "The card was suspended or closed: transaction not permitted (N / 12).", "12"),
    (Card.CLOSED, "The card was suspended or closed", "12"),
    (Card.LOST_STOLEN, "The card is reported lost or stolen: declined (N / 10).", "10"),
])
def test_a_card_that_may_not_authenticate_says_why(client, api, card, lenient, status, words, code):
    Card.objects.filter(pk=card.pk).update(status=status)
    tx = send(client)
    assert tx.trans_status_reason == code
    assert words in explanation(api, tx.acs_trans_id)


def test_an_expired_card_says_its_expiry(client, api, card, lenient):
    last_year = timezone.now().year - 1
    Card.objects.filter(pk=card.pk).update(expiry_month=3, expiry_year=last_year)
    tx = send(client)
    assert f"The card had expired (expiry 03/{last_year}): declined (N / 05)." in explanation(api, tx.acs_trans_id)


def test_the_velocity_limit_says_the_count_and_the_limit(client, api, card, issuer):
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, velocity_max_per_hour=2, velocity_warn_per_hour=1)
    send(client), send(client)
    tx = send(client)
    assert tx.trans_status_reason == "04"
    assert ("Velocity limit: 2 authentications of this card in the last hour, the limit is 2: declined (N / 04)."
            in explanation(api, tx.acs_trans_id))


def test_3ri_needing_a_challenge_says_no_cardholder_is_present(client, api, card, phone, lenient):
    tx = send(client, channel="03", threeDSRequestorChallengeInd="04")
    assert "a 3RI authentication has no cardholder present to challenge: declined (N / 21)." in explanation(api, tx.acs_trans_id)


def test_a_technical_failure_is_u_22(client, api, card, phone, lenient):
    AcsSigningKey.objects.filter(network="visa").delete()
    ares = AppSession(client).areq(pan=PAN, threeDSRequestorChallengeInd="04")
    text = explanation(api, ares["acsTransID"])
    assert "A technical problem at the ACS stopped the authentication" in text and "(U / 22)" in text


def test_a_pan_outside_the_grants_is_explained_as_no_card_record(client, issuer):
    ares = client.post("/3ds/v2/areq", areq(pan="5555555555554444"), content_type="application/json").json()
    stored = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert stored.issuer_id is None  # no issuer: not in any API, but the admin may show it
    assert "no card record (N / 08)" in explain(stored)


# ---------------------------------------------------------------- the SMS challenge (browser page)


@pytest.fixture
def simulator(client, card, phone, lenient, policy, sms_file, endpoints, django_capture_on_commit_callbacks):  # noqa: F811
    """The 3DS Server and the cardholder's browser of apps.threeds.simulator, on the test client;
    SMS in `sms_file`, RReqs to the `endpoints` DS."""
    transport = DjangoClientTransport(client, around=lambda: django_capture_on_commit_callbacks(execute=True))
    return Simulator(transport, endpoints, sms_file)


def challenged(simulator, **overrides):
    auth = simulator.areq(pan=PAN, channel=BROWSER, threeDSRequestorChallengeInd="04", **overrides)
    assert auth.trans_status == "C", auth.ares
    return auth


def test_a_verified_code_says_how_many_wrong_ones_came_first(simulator, api, sms_file):
    auth = challenged(simulator)
    browser = auth.browser()
    browser.start()
    browser.submit(wrong(sms_file.last_code()))
    browser.submit(sms_file.last_code())
    text = explanation(api, auth.acs_trans_id)
    assert text.startswith("Challenged because the 3DS Requestor mandated a challenge.")
    assert "The cardholder entered the correct SMS code after 1 wrong code (Y)." in text


def test_too_many_wrong_codes(simulator, api, sms_file):
    auth = challenged(simulator)
    browser = auth.browser()
    browser.start()
    for _ in range(3):
        browser.submit(wrong(sms_file.last_code()))
    assert "Too many wrong codes: 3 of 3 attempts used (N / 19)." in explanation(api, auth.acs_trans_id)


def test_a_cancel_on_the_page(simulator, api):
    auth = challenged(simulator)
    browser = auth.browser()
    browser.start()
    browser.cancel()
    assert "The cardholder cancelled the challenge (N / 01)." in explanation(api, auth.acs_trans_id)


def test_a_challenge_never_opened_times_out(simulator, api):
    auth = challenged(simulator)
    assert "waiting for the cardholder to open it" in explanation(api, auth.acs_trans_id)
    challenges_time_out(now=timezone.now() + timedelta(minutes=5))
    assert "never opened in time (no first CReq): timed out (N / 14)." in explanation(api, auth.acs_trans_id)


def test_a_challenge_not_finished_in_time(simulator, api):
    auth = challenged(simulator)
    auth.browser().start()
    assert "Challenge by an SMS code in progress." in explanation(api, auth.acs_trans_id)
    challenges_time_out(now=timezone.now() + timedelta(hours=1))
    assert "The challenge was not completed in time: timed out (N / 14)." in explanation(api, auth.acs_trans_id)


def test_an_sms_limit_names_the_limit(simulator, api, set_policy):  # noqa: F811
    set_policy(max_sends_per_card_hour=1)
    challenged(simulator).browser().start()
    auth = challenged(simulator)
    auth.browser().start()
    tx = Transaction.objects.get(acs_trans_id=auth.acs_trans_id)
    assert (tx.trans_status, tx.trans_status_reason) == ("N", "13")
    text = explanation(api, auth.acs_trans_id)
    assert "The SMS code could not be sent: the card reached its limit of 1 codes in an hour. Declined (N / 13)." in text


# ---------------------------------------------------------------- in Japanese, for staff pages


def test_explain_speaks_the_active_language(client, card, lenient):
    tx = send(client)
    with translation.override("ja"):
        text = explain(tx)
    assert "リスクスコア" in text and "Frictionless" not in text


def test_a_decline_for_want_of_a_method_reads_in_japanese(client, card, cardholder, lenient):
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=False)
    tx = send(client, threeDSRequestorChallengeInd="04")
    with translation.override("ja"):
        text = explain(tx)
    assert "会員の電話番号が未認証のため" in text and "ポリシーにより拒否しました（N / 13）" in text


# ---------------------------------------------------------------- where staff read it


def test_the_explanation_and_the_3ds_method_are_on_the_admin_and_analyst_pages(client, card, cardholder, lenient, issuer):
    from django.test import Client

    from apps.accounts.roles import ANALYST, ISSUER_ADMIN, sync_role_groups
    from tests.factories import make_staff

    sync_role_groups()

    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=False)
    tx = send(client, threeDSRequestorChallengeInd="04", threeDSCompInd="N")
    pages = []
    for role, url in ((ISSUER_ADMIN, f"/admin/threeds/transaction/{tx.acs_trans_id}/change/"),
                      (ANALYST, f"/analyst/transactions/{tx.acs_trans_id}/")):
        staff = Client()
        staff.force_login(make_staff(issuer, role))
        page = staff.get(url)
        assert page.status_code == 200, (role, url)
        pages.append(page.content.decode())
    for html in pages:
        assert "Declined by policy (N / 13)." in html and "the cardholder&#x27;s phone is not verified" in html
        assert "Not completed (threeDSCompInd N)" in html
    with translation.override("ja"):
        staff = Client(HTTP_ACCEPT_LANGUAGE="ja")
        staff.force_login(make_staff(issuer, ANALYST, username="analyst-ja"))
        html = staff.get(f"/analyst/transactions/{tx.acs_trans_id}/").content.decode()
        assert "Declined by policy" not in html and "ポリシーにより拒否しました（N / 13）" in html
