"""POST /api/v1/authentication-values/verify (SPEC §5.1, §3.6): the issuer's authorisation system
checks an authenticationValue against the PAN, dsTransID, amount and currency it was made for."""

import logging

import pytest

from apps.threeds.models import RiskPolicy, Transaction
from tests.factories import CardholderFactory, make_card
from tests.threeds.builders import areq

pytestmark = pytest.mark.django_db

PAN = "4111111111111111"
OTHER_PAN = "4012888888881881"
URL = "/api/v1/authentication-values/verify"


@pytest.fixture
def card(cardholder):
    RiskPolicy.objects.create(issuer=cardholder.issuer, new_merchant_weight=0)
    return make_card(cardholder=cardholder, pan=PAN)


@pytest.fixture
def authenticated(client, card) -> Transaction:
    """A frictionless Y: ¥1,500 (purchaseAmount "1500", currency 392)."""
    ares = client.post("/3ds/v2/areq", areq(pan=PAN), content_type="application/json").json()
    assert ares["transStatus"] == "Y"
    return Transaction.objects.get(acs_trans_id=ares["acsTransID"])


def body(tx: Transaction, **changes) -> dict:
    return {
        "pan": PAN,
        "ds_trans_id": str(tx.ds_trans_id),
        "authentication_value": tx.authentication_value,
        "purchase_amount": "1500",
        "purchase_currency": "392",
        **changes,
    }


def tampered(value: str) -> str:
    """The same value with one bit of its MAC flipped."""
    import base64

    raw = bytearray(base64.b64decode(value))
    raw[-1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_the_value_this_service_issued_is_valid(api, authenticated):
    r = api.post(URL, body(authenticated))

    assert r.status_code == 200
    assert r.json() == {"valid": True, "acs_trans_id": str(authenticated.acs_trans_id), "trans_status": "Y", "eci": "05"}
    assert PAN not in r.content.decode()


def test_the_amount_may_be_a_json_integer(api, authenticated):
    assert api.post(URL, body(authenticated, purchase_amount=1500)).json()["valid"] is True


@pytest.mark.parametrize(
    "changes",
    [
        {"purchase_amount": "1501"},
        {"purchase_currency": "840"},
        {"pan": OTHER_PAN},
        {"authentication_value": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
    ],
    ids=["amount", "currency", "pan", "value"],
)
def test_anything_else_is_not_valid(api, authenticated, changes):
    r = api.post(URL, body(authenticated, **changes))

    assert r.status_code == 200 and r.json()["valid"] is False
    assert r.json()["acs_trans_id"] == str(authenticated.acs_trans_id)
    assert PAN not in r.content.decode() and OTHER_PAN not in r.content.decode()


def test_a_tampered_value_is_not_valid(api, authenticated):
    r = api.post(URL, body(authenticated, authentication_value=tampered(authenticated.authentication_value)))
    assert r.json()["valid"] is False


def test_a_declined_transaction_has_no_valid_value(api, client, cardholder):
    make_card(cardholder=cardholder, pan=PAN, status="suspended")
    ares = client.post("/3ds/v2/areq", areq(pan=PAN), content_type="application/json").json()
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])

    r = api.post(URL, body(tx, authentication_value="AAAAAAAAAAAAAAAAAAAAAAAAAAA="))

    assert r.json() == {"valid": False, "acs_trans_id": str(tx.acs_trans_id), "trans_status": "N", "eci": "07"}


def test_a_value_made_before_a_key_rotation_still_verifies(api, authenticated, settings):
    settings.AUTHENTICATION_VALUE_KEYS = f"tav2:bmV3LWF1dGhlbnRpY2F0aW9uLXZhbHVlLWtleS0zMmJ5dGVz,{settings.AUTHENTICATION_VALUE_KEYS}"
    assert api.post(URL, body(authenticated)).json()["valid"] is True


def test_a_value_whose_key_was_retired_is_not_valid(api, authenticated, settings):
    settings.AUTHENTICATION_VALUE_KEYS = "tav2:bmV3LWF1dGhlbnRpY2F0aW9uLXZhbHVlLWtleS0zMmJ5dGVz"
    r = api.post(URL, body(authenticated))
    assert r.status_code == 200 and r.json()["valid"] is False


def test_an_unknown_ds_trans_id_is_404(api, authenticated):
    r = api.post(URL, body(authenticated, ds_trans_id="3f1c4a0e-3d5b-4b8a-9a55-2a6f0d8c1e77"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_another_issuers_transaction_is_404(other_api, authenticated):
    r = other_api.post(URL, body(authenticated))
    assert r.status_code == 404 and PAN not in r.content.decode()


def test_another_issuer_can_neither_enrol_this_card_nor_see_its_authentication(other_api, other_issuer, authenticated):
    """Was: the same PAN enrolled at another issuer. With BIN grants the other issuer cannot
    enrol it (the PAN is in this issuer's grant), and it still sees nothing of this one."""
    from datetime import date

    from apps.cards.services import card_create
    from apps.core.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as exc:
        card_create(
            issuer=other_issuer, card_id="theirs", cardholder=CardholderFactory(issuer=other_issuer), pan=PAN,
            expiry_month=12, expiry_year=date.today().year + 1, actor="tests",
        )
    assert exc.value.code == "pan_outside_bin_grants"
    assert other_api.post(URL, body(authenticated)).status_code == 404


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"pan": 4111111111111111}, "pan"),
        ({"pan": "4111111111111112"}, "pan"),  # fails Luhn
        ({"ds_trans_id": "not-a-uuid"}, "ds_trans_id"),
        ({"ds_trans_id": 12345}, "ds_trans_id"),
        ({"purchase_amount": "15.00"}, "purchase_amount"),
        ({"purchase_amount": True}, "purchase_amount"),
        ({"purchase_currency": "JPY"}, "purchase_currency"),
        ({"authentication_value": None}, "authentication_value"),
        ({"cvv": "123"}, "cvv"),
    ],
)
def test_strict_input(api, authenticated, changes, field):
    r = api.post(URL, body(authenticated, **changes))

    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"]
    assert "4111111111111112" not in r.content.decode() and PAN not in r.content.decode()


def test_every_field_is_required(api, authenticated):
    r = api.post(URL, {})
    assert set(r.json()["error"]["fields"]) == {"pan", "ds_trans_id", "authentication_value", "purchase_amount", "purchase_currency"}


def test_a_non_payment_authentication_is_verified_without_an_amount(api, client, card):
    RiskPolicy.objects.filter(issuer=card.issuer).update(non_payment_weight=0)
    ares = client.post("/3ds/v2/areq", areq(pan=PAN, category="02"), content_type="application/json").json()
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert tx.trans_status == "Y" and tx.purchase_amount is None

    r = api.post(URL, body(tx, purchase_amount=None, purchase_currency=None))

    assert r.json()["valid"] is True


def test_the_pan_never_reaches_a_log_line(api, authenticated, caplog):
    with caplog.at_level(logging.DEBUG):
        api.post(URL, body(authenticated))
        api.post(URL, body(authenticated, pan=OTHER_PAN))
        api.post(URL, body(authenticated, purchase_amount={"pan": PAN}))
    for record in caplog.records:
        assert PAN not in record.getMessage() and OTHER_PAN not in record.getMessage()


def test_an_idempotency_key_replays_the_answer(api, authenticated):
    first = api.post(URL, body(authenticated), HTTP_IDEMPOTENCY_KEY="verify-1")
    again = api.post(URL, body(authenticated), HTTP_IDEMPOTENCY_KEY="verify-1")

    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
