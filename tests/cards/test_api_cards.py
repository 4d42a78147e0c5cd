import pytest
from django.db import connection
from django.utils import timezone

from apps.cards.models import Card
from apps.core.crypto import pan_fingerprint
from tests.factories import CardProductFactory, grant, make_card, new_pan

pytestmark = pytest.mark.django_db

NEXT_YEAR = timezone.now().year + 1


def card_body(cardholder, **overrides):
    body = {
        "card_id": "card-001",
        "cardholder": str(cardholder.pk),
        "pan": "4111111111111111",
        "expiry_month": 12,
        "expiry_year": NEXT_YEAR,
    }
    body.update(overrides)
    return body


def test_it_enrolls_a_card_and_never_echoes_the_pan(api, cardholder):
    r = api.post("/api/v1/cards", card_body(cardholder))
    assert r.status_code == 201
    body = r.json()
    assert body["last4"] == "1111" and body["network"] == "visa" and body["status"] == "active"
    assert body["card_id"] == "card-001" and body["cardholder"] == str(cardholder.pk)
    assert "4111111111111111" not in r.content.decode()
    assert "pan" not in body


def test_the_pan_is_encrypted_at_rest_with_a_key_id(api, cardholder):
    card_pk = api.post("/api/v1/cards", card_body(cardholder)).json()["id"]
    card = Card.objects.get(pk=card_pk)
    assert card.pan_key_id == "t2"  # the first (current) key of DATA_ENCRYPTION_KEYS
    assert card.decrypt_pan() == "4111111111111111"
    assert card.pan_fingerprint == pan_fingerprint("4111111111111111")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM cards_card")
        row = cursor.fetchone()
    raw = " ".join(bytes(v).hex() + " " + bytes(v).decode("latin-1") if isinstance(v, (bytes, memoryview)) else str(v) for v in row)
    assert "4111111111111111" not in raw
    assert "4111111111111111".encode().hex() not in raw


@pytest.mark.parametrize(
    "pan, reason",
    [
        ("4111111111111112", "Luhn"),
        ("411111111111", "13 to 19"),
        ("41111111111111111111", "13 to 19"),
        ("4111-1111-1111-1111", "13 to 19"),
        ("", ""),
    ],
)
def test_a_bad_pan_is_400_naming_pan_without_echoing_it(api, cardholder, pan, reason):
    r = api.post("/api/v1/cards", card_body(cardholder, pan=pan))
    assert r.status_code == 400
    assert "pan" in r.json()["error"]["fields"]
    assert reason in " ".join(r.json()["error"]["fields"]["pan"])
    if pan:
        assert pan not in r.content.decode()
    assert not Card.objects.exists()


def test_a_pan_of_the_wrong_type_is_400(api, cardholder):
    r = api.post("/api/v1/cards", card_body(cardholder, pan=4111111111111111))
    assert r.status_code == 400 and "pan" in r.json()["error"]["fields"]
    assert "4111111111111111" not in r.content.decode()


def test_an_expired_card_is_400(api, cardholder):
    last_year = timezone.now().year - 1
    r = api.post("/api/v1/cards", card_body(cardholder, expiry_year=last_year))
    assert r.status_code == 400 and "expiry_year" in r.json()["error"]["fields"]


def test_a_card_expiring_this_month_is_accepted(api, cardholder):
    now = timezone.now()
    r = api.post("/api/v1/cards", card_body(cardholder, expiry_month=now.month, expiry_year=now.year))
    assert r.status_code == 201


@pytest.mark.parametrize("month", [0, 13])
def test_an_impossible_month_is_400(api, cardholder, month):
    r = api.post("/api/v1/cards", card_body(cardholder, expiry_month=month))
    assert r.status_code == 400 and "expiry_month" in r.json()["error"]["fields"]


@pytest.mark.parametrize("value", ["12", 12.5, True, None])
def test_expiry_must_be_an_integer(api, cardholder, value):
    r = api.post("/api/v1/cards", card_body(cardholder, expiry_month=value))
    assert r.status_code == 400 and "expiry_month" in r.json()["error"]["fields"]


@pytest.mark.parametrize("card_id", ["has space", "x" * 49, "card/1", ""])
def test_a_bad_card_id_is_400(api, cardholder, card_id):
    r = api.post("/api/v1/cards", card_body(cardholder, card_id=card_id))
    assert r.status_code == 400 and "card_id" in r.json()["error"]["fields"]


def test_a_duplicate_pan_is_409_and_writes_nothing(api, cardholder):
    assert api.post("/api/v1/cards", card_body(cardholder)).status_code == 201
    r = api.post("/api/v1/cards", card_body(cardholder, card_id="card-002"))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "duplicate_pan"
    assert Card.objects.count() == 1


def test_a_duplicate_card_id_is_409(api, cardholder):
    api.post("/api/v1/cards", card_body(cardholder))
    r = api.post("/api/v1/cards", card_body(cardholder, pan="5555555555554444"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "duplicate_card_id"


def test_a_pan_another_issuer_holds_is_outside_this_issuers_grants(api, other_api, cardholder, other_issuer):
    """Was: the same PAN enrolled at two issuers. A PAN now belongs to the one issuer whose grant
    holds it (SPEC §2); the full takeover scenario is in test_bin_grants.py."""
    from tests.factories import CardholderFactory

    pan = new_pan("4970")
    grant(other_issuer, pan[:11])
    theirs = CardholderFactory(issuer=other_issuer)
    assert other_api.post("/api/v1/cards", card_body(theirs, pan=pan)).status_code == 201
    r = api.post("/api/v1/cards", card_body(cardholder, pan=pan))
    assert r.status_code == 400 and r.json()["error"]["code"] == "pan_outside_bin_grants"


def test_an_unknown_cardholder_is_400_naming_cardholder(api):
    r = api.post("/api/v1/cards", {**card_body(type("C", (), {"pk": "8a5c2a40-9a3e-4a53-8d5e-5f8d7a9b6c11"})())})
    assert r.status_code == 400 and "cardholder" in r.json()["error"]["fields"]


@pytest.mark.parametrize(
    "pan, network",
    [("4111111111111111", "visa"), ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
     ("378282246310005", "amex"), ("3530111333300000", "jcb"), ("6011111111111117", "discover")],
)
def test_the_network_comes_from_the_pan_prefix(api, cardholder, pan, network):
    assert api.post("/api/v1/cards", card_body(cardholder, pan=pan)).json()["network"] == network


def test_a_pan_of_no_known_network_is_400(api, cardholder, issuer):
    pan = new_pan("9")
    grant(issuer, pan[:11])
    r = api.post("/api/v1/cards", card_body(cardholder, pan=pan))
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_network"


def test_a_pan_in_a_product_range_takes_the_product_network(api, cardholder, issuer):
    grant(issuer, "497010", "497019")
    product = CardProductFactory(issuer=issuer, network="cartes_bancaires", co_badge="visa")
    product.bin_ranges.create(start="497010", end="497019")
    r = api.post("/api/v1/cards", card_body(cardholder, pan=new_pan("497012")))
    assert r.json()["network"] == "cartes_bancaires"
    assert r.json()["co_badge"] == "visa"
    assert r.json()["product"] == str(product.pk)


def test_an_explicit_product_wins(api, cardholder, issuer):
    product = CardProductFactory(issuer=issuer, network="mastercard")
    r = api.post("/api/v1/cards", card_body(cardholder, product=str(product.pk)))
    assert r.json()["network"] == "mastercard"


def test_another_issuers_product_is_an_unknown_product(api, cardholder, other_issuer):
    product = CardProductFactory(issuer=other_issuer)
    r = api.post("/api/v1/cards", card_body(cardholder, product=str(product.pk)))
    assert r.status_code == 400 and "product" in r.json()["error"]["fields"]


def test_it_reads_updates_status_and_expiry_and_deletes(api, cardholder):
    card = make_card(cardholder=cardholder)
    url = f"/api/v1/cards/{card.pk}"
    assert api.get(url).json()["last4"] == card.last4
    assert api.patch(url, {"status": "lost_stolen"}).json()["status"] == "lost_stolen"
    assert api.patch(url, {"expiry_month": 6, "expiry_year": NEXT_YEAR + 2}).json()["expiry_year"] == NEXT_YEAR + 2
    assert api.patch(url, {"status": "stolen"}).status_code == 400
    assert api.patch(url, {"pan": "4111111111111111"}).status_code == 400
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404


def test_a_past_expiry_cannot_be_patched_in(api, cardholder):
    card = make_card(cardholder=cardholder)
    r = api.patch(f"/api/v1/cards/{card.pk}", {"expiry_year": 2001})
    assert r.status_code == 400
    card.refresh_from_db()
    assert card.expiry_year != 2001
