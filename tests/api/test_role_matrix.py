"""Who may use the new issuer API actions (issue 14 item 5, and `explanation`): only an API key,
and only on its own issuer's data. A staff session is no credential for /api/v1/, whatever the role
(anonymous, analyst, staff of this issuer or another, superuser)."""

import json

import pytest

from apps.accounts.roles import ANALYST, ISSUER_ADMIN
from apps.cards.models import Phone
from apps.threeds.models import RiskPolicy, Transaction
from tests.factories import client_for, make_card, make_phone, make_staff, make_superuser
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)
from tests.threeds.builders import areq

pytestmark = pytest.mark.django_db
PAN = "4111111111111111"


@pytest.fixture
def world(client, issuer, cardholder):
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
    card = make_card(cardholder=cardholder, pan=PAN)
    phone = make_phone(cardholder)
    ares = client.post("/3ds/v2/areq", areq(pan=PAN), content_type="application/json").json()
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    return {
        "list": ("get", "/api/v1/cards", None),
        "patch": ("patch", f"/api/v1/cardholders/{cardholder.pk}/phones/{phone.pk}", {"verified": False}),
        "detail": ("get", f"/api/v1/transactions/{tx.acs_trans_id}", None),
        "card": card, "phone": phone,
    }


def call(client, action):
    method, path, body = action
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, data=json.dumps(body), content_type="application/json")


def sessions(issuer, other_issuer):
    yield "anonymous", None
    yield "analyst", make_staff(issuer, ANALYST)
    yield "issuer staff", make_staff(issuer, ISSUER_ADMIN)
    yield "other issuer's staff", make_staff(other_issuer, ISSUER_ADMIN)
    yield "superuser", make_superuser()


@pytest.mark.parametrize("name", ["list", "patch", "detail"])
def test_a_staff_session_is_no_api_credential(world, issuer, other_issuer, name):
    from django.test import Client

    for who, user in sessions(issuer, other_issuer):
        client = client_for(user) if user else Client()
        r = call(client, world[name])
        assert r.status_code == 401, (who, r.status_code)
        assert r.json()["error"]["code"] == "not_authenticated"
    assert Phone.objects.get(pk=world["phone"].pk).verified is True


@pytest.mark.parametrize("name", ["list", "patch", "detail"])
def test_the_issuers_key_may(world, api, name):
    assert call(api, world[name]).status_code == 200


def test_another_issuers_key_sees_nothing_and_changes_nothing(world, other_api):
    assert other_api.get("/api/v1/cards").json()["results"] == []
    assert call(other_api, world["patch"]).status_code == 404
    assert call(other_api, world["detail"]).status_code == 404
    assert Phone.objects.get(pk=world["phone"].pk).verified is True
