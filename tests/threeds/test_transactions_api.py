"""Transaction look-up in the issuer API (SPEC §5.1) and in the admin: filters, cursor pagination,
tenancy, the decision, the challenge, the RReq and the event timeline. Never a PAN."""

import uuid
from datetime import datetime, timedelta, timezone as dt_timezone
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.otp.models import OtpSession
from apps.otp.services import otp_policy_create_default
from apps.threeds import rreq
from apps.threeds.models import Challenge, RiskPolicy, RReqDelivery, Transaction
from tests.factories import CardholderFactory, IssuerFactory, make_card, make_phone
from tests.support.delivery import sweep_until_settled
from tests.threeds.builders import areq

pytestmark = pytest.mark.django_db

PAN = "4111111111111111"
OTHER_PAN = "4012888888881881"
LIST = "/api/v1/transactions"


@pytest.fixture
def card(cardholder):
    RiskPolicy.objects.create(issuer=cardholder.issuer, new_merchant_weight=0)
    return make_card(cardholder=cardholder, pan=PAN)


@pytest.fixture
def authenticate(client):
    def run(pan: str = PAN, **elements) -> Transaction:
        ares = client.post("/3ds/v2/areq", areq(pan=pan, **elements), content_type="application/json").json()
        return Transaction.objects.get(acs_trans_id=ares["acsTransID"])

    return run


@pytest.fixture
def phone(card):
    return make_phone(card.cardholder)


def at(tx: Transaction, when: datetime) -> Transaction:
    Transaction.objects.filter(pk=tx.pk).update(created_at=when)
    tx.refresh_from_db()
    return tx


def ids(response) -> list[str]:
    return [item["acs_trans_id"] for item in response.json()["results"]]


def follow(api, response):
    """The next (older) page, through the `next` link as a client follows it."""
    link = urlsplit(response.json()["next"])
    return api.get(f"{link.path}?{link.query}")


# ---------------------------------------------------------------- list


def test_the_list_is_the_issuers_own_newest_first(api, card, authenticate, other_issuer):
    first, second = authenticate(), authenticate()
    stranger = make_card(cardholder=CardholderFactory(issuer=other_issuer), pan=OTHER_PAN)
    authenticate(OTHER_PAN)

    r = api.get(LIST)

    assert r.status_code == 200
    assert ids(r) == [str(second.acs_trans_id), str(first.acs_trans_id)]
    item = r.json()["results"][0]
    assert item["card"] == str(card.pk) and item["card_id"] == card.card_id and item["last4"] == "1111"
    assert (item["ares_trans_status"], item["trans_status"], item["eci"], item["method"]) == ("Y", "Y", "05", None)
    assert item["merchant_name"] == "Tokyo Books" and item["purchase_amount"] == 1500 and item["purchase_currency"] == "392"
    assert PAN not in r.content.decode() and stranger.last4 not in {i["last4"] for i in r.json()["results"]}


def test_filters(api, card, phone, authenticate, cardholder):
    frictionless = authenticate()
    challenged = authenticate(threeDSRequestorChallengeInd="04")
    other_card = make_card(cardholder=cardholder, pan=OTHER_PAN, status="lost_stolen")
    declined = authenticate(OTHER_PAN)
    assert (frictionless.trans_status, challenged.ares_trans_status, declined.trans_status) == ("Y", "C", "N")

    assert ids(api.get(LIST, {"card": str(other_card.pk)})) == [str(declined.pk)]
    assert ids(api.get(LIST, {"status": "Y"})) == [str(frictionless.pk)]
    assert ids(api.get(LIST, {"status": "N"})) == [str(declined.pk)]
    assert ids(api.get(LIST, {"status": "C"})) == [str(challenged.pk)]  # still in its challenge
    assert ids(api.get(LIST, {"method": "sms_otp"})) == [str(challenged.pk)]
    assert ids(api.get(LIST, {"method": "oob"})) == []
    assert ids(api.get(LIST, {"card": str(card.pk), "status": "Y"})) == [str(frictionless.pk)]
    assert ids(api.get(LIST, {"card": str(uuid.uuid4())})) == []


def test_created_after_is_inclusive_and_created_before_exclusive(api, card, authenticate):
    base = datetime(2026, 3, 1, 12, 0, tzinfo=dt_timezone.utc)
    early, middle, late = (at(authenticate(), base + timedelta(hours=h)) for h in (0, 1, 2))

    r = api.get(LIST, {"created_after": "2026-03-01T13:00:00Z", "created_before": "2026-03-01T14:00:00Z"})
    assert ids(r) == [str(middle.pk)]
    r = api.get(LIST, {"created_after": "2026-03-01T21:00:00+09:00"})  # 12:00 UTC
    assert ids(r) == [str(late.pk), str(middle.pk), str(early.pk)]
    assert ids(api.get(LIST, {"created_before": "2026-03-01T12:00:00Z"})) == []


def test_cursor_pagination_is_stable_when_transactions_share_a_time(api, card, authenticate):
    same = timezone.now() - timedelta(minutes=5)
    made = [at(authenticate(), same) for _ in range(5)]
    expected = sorted((str(tx.pk) for tx in made), reverse=True)

    seen, page = [], api.get(LIST, {"limit": 2})
    while True:
        assert page.status_code == 200
        seen += ids(page)
        if not page.json()["next"]:
            break
        # Transactions arriving meanwhile are newer: they never shift the pages being read.
        authenticate()
        page = follow(api, page)

    assert seen == expected


def test_previous_goes_back_to_newer_pages(api, card, authenticate):
    made = [authenticate() for _ in range(5)]
    first = api.get(LIST, {"limit": 2})
    second = follow(api, first)
    assert first.json()["previous"] is None and second.json()["previous"]

    link = urlsplit(second.json()["previous"])
    back = api.get(f"{link.path}?{link.query}")

    newest = sorted(made, key=lambda tx: (tx.created_at, tx.pk), reverse=True)
    assert ids(back) == ids(first) == [str(tx.pk) for tx in newest[:2]]
    assert ids(follow(api, back)) == ids(second)


@pytest.mark.parametrize(
    "query, field",
    [
        ({"status": "X"}, "status"),
        ({"method": "push"}, "method"),
        ({"card": "card-001"}, "card"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2026-03-02T00:00:00Z", "created_before": "2026-03-01T00:00:00Z"}, "created_before"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"sort": "amount"}, "sort"),
        ({"status": ["Y", "N"]}, "status"),
    ],
)
def test_a_bad_query_is_400_naming_the_parameter(api, query, field):
    r = api.get(LIST, query)

    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"]


def test_it_needs_an_api_key(anon_api):
    r = anon_api.get(LIST)
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"


# ---------------------------------------------------------------- detail


def test_the_detail_explains_the_decision_and_shows_the_timeline(api, card, authenticate):
    tx = authenticate()

    r = api.get(f"{LIST}/{tx.acs_trans_id}")

    assert r.status_code == 200
    body = r.json()
    assert body["acs_trans_id"] == str(tx.pk) and body["ds_trans_id"] == str(tx.ds_trans_id)
    assert body["result"] == {
        "ares_trans_status": "Y", "trans_status": "Y", "trans_status_reason": None, "eci": "05",
        "authentication_type": None, "authentication_value_issued": True, "challenge_cancel": None,
        "interaction_counter": 0, "exemption": None,
    }
    assert body["decision"]["score"] == tx.risk_score and body["decision"]["rules"][0]["rule"] == "base"
    assert body["challenge"] is None and body["rreq"] is None
    assert [e["kind"] for e in body["timeline"]] == ["threeds.areq_received", "threeds.ares_sent"]
    assert body["timeline"][0]["actor"] == "ds" and body["timeline"][0]["data"]["last4"] == "1111"
    text = r.content.decode()
    assert PAN not in text and tx.authentication_value not in text


def test_the_detail_of_a_challenge_shows_attempts_and_the_rreq(api, card, phone, authenticate, settings):
    settings.OUTBOUND_MAX_TRIES = 1
    tx = authenticate(threeDSRequestorChallengeInd="04")
    version = otp_policy_create_default(issuer=card.issuer)
    session = OtpSession.objects.create(
        issuer=card.issuer, card=card, phone=phone, phone_e164="+819012345678", masked_phone="+81 ••• •••• 5678",
        acs_trans_id=tx.pk, policy_version=version, state=OtpSession.LOCKED, attempts_used=3, resends_used=1,
    )
    Challenge.objects.filter(pk=tx.pk).update(
        otp_session=session, state=Challenge.FAILED, fallback_reason="push_failed", finished_at=timezone.now()
    )
    Transaction.objects.filter(pk=tx.pk).update(trans_status="N", trans_status_reason="19", eci="07", ds_url="")
    tx.refresh_from_db()
    rreq.rreq_enqueue(tx)  # no dsURL: fails at once, visibly
    audit_record(issuer=card.issuer, kind="threeds.challenge_finished", actor="cardholder", acs_trans_id=tx.pk,
                 data={"transStatus": "N", "transStatusReason": "19"})

    body = api.get(f"{LIST}/{tx.acs_trans_id}").json()

    assert body["method"] == "sms_otp"
    assert body["challenge"] | {"created_at": None, "finished_at": None} == {
        "method": "sms_otp", "decoupled": False, "state": "failed", "fallback_reason": "push_failed", "attempts": 3,
        "max_attempts": version.rules.max_attempts, "resends": 1, "created_at": None, "finished_at": None,
    }
    assert body["result"]["trans_status"] == "N" and body["result"]["trans_status_reason"] == "19"
    assert body["rreq"]["status"] == RReqDelivery.FAILED and body["rreq"]["last_error"] == "The AReq named no dsURL."
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds == ["threeds.areq_received", "threeds.ares_sent", "threeds.rreq_failed", "threeds.challenge_finished"]
    times = [e["created_at"] for e in body["timeline"]]
    assert times == sorted(times)


def test_another_issuers_transaction_is_404(api, other_api, card, authenticate):
    tx = authenticate()

    r = other_api.get(f"{LIST}/{tx.acs_trans_id}")

    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert other_api.get(LIST).json()["results"] == []
    assert api.get(f"{LIST}/{tx.acs_trans_id}").status_code == 200


@pytest.mark.parametrize("acs_trans_id", [uuid.uuid4(), "nope"])
def test_an_unknown_transaction_is_404(api, acs_trans_id):
    assert api.get(f"{LIST}/{acs_trans_id}").status_code == 404


def test_an_unknown_pan_transaction_belongs_to_nobody(api, authenticate):
    tx = authenticate("4000000000000002")
    assert tx.issuer_id is None
    assert api.get(f"{LIST}/{tx.acs_trans_id}").status_code == 404 and api.get(LIST).json()["results"] == []


# ---------------------------------------------------------------- admin


def staff_client(issuer, *perms: str, superuser: bool = False) -> Client:
    user = User.objects.create_user(
        username=f"staff-{uuid.uuid4().hex[:8]}", password="x" * 16, is_staff=True, issuer=issuer, is_superuser=superuser
    )
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="threeds", codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_their_transactions_with_the_timeline_never_the_pan_or_value(card, authenticate):
    tx = authenticate()
    client = staff_client(card.issuer, "view_transaction")

    listing = client.get(reverse("admin:threeds_transaction_changelist"))
    page = client.get(reverse("admin:threeds_transaction_change", args=[tx.pk]))
    search = client.get(reverse("admin:threeds_transaction_changelist"), {"q": str(tx.ds_trans_id)})

    assert listing.status_code == page.status_code == search.status_code == 200
    html = page.content.decode()
    assert "threeds.areq_received" in html and "threeds.ares_sent" in html  # the timeline
    assert "•••• 1111" in listing.content.decode() and str(tx.pk) in search.content.decode()
    for text in (listing.content.decode(), html):
        assert PAN not in text and tx.authentication_value not in text
    assert 'name="_save"' not in html  # read-only


def test_staff_of_another_issuer_see_nothing(card, authenticate):
    tx = authenticate()
    client = staff_client(IssuerFactory(), "view_transaction", "view_rreqdelivery")

    assert str(tx.pk) not in client.get(reverse("admin:threeds_transaction_changelist")).content.decode()
    assert client.get(reverse("admin:threeds_transaction_change", args=[tx.pk])).status_code == 302  # "does not exist"


def test_superusers_see_every_issuer(card, authenticate, other_issuer):
    mine = authenticate()
    theirs = authenticate("4000000000000002")  # an unknown PAN: a transaction of no issuer
    client = staff_client(None, superuser=True)

    html = client.get(reverse("admin:threeds_transaction_changelist")).content.decode()

    assert str(mine.pk) in html and str(theirs.pk) in html
    assert client.get(reverse("admin:threeds_transaction_change", args=[theirs.pk])).status_code == 200


def test_rreq_deliveries_show_their_tries(card, phone, authenticate, settings, django_capture_on_commit_callbacks):
    settings.OUTBOUND_MAX_TRIES = 2
    settings.OUTBOUND_BACKOFF_BASE_SECONDS = settings.OUTBOUND_BACKOFF_MAX_SECONDS = 0.01
    tx = authenticate(threeDSRequestorChallengeInd="04", dsURL="http://127.0.0.1:9/unreachable")
    Transaction.objects.filter(pk=tx.pk).update(trans_status="N", trans_status_reason="19", eci="07")
    tx.refresh_from_db()
    from issuer_portal.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            delivery = rreq.rreq_enqueue(tx)
        sweep_until_settled("rreq")  # the second try, as the sweep makes it in process
    finally:
        app.conf.task_always_eager = eager
    client = staff_client(card.issuer, "view_rreqdelivery", "view_transaction")

    page = client.get(reverse("admin:threeds_rreqdelivery_change", args=[delivery.pk]))
    tx_page = client.get(reverse("admin:threeds_transaction_change", args=[tx.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<td class="field-error_class">') == 2 and "ConnectionError" in html
    assert "Failed" in tx_page.content.decode()
