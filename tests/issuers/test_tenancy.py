"""Issuer A's key against each of issuer B's objects: always 404 (ids do not leak), never a change."""

import pytest

from apps.cards.models import Card, Cardholder, CardProduct, Phone
from tests.factories import CardholderFactory, CardProductFactory, make_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(other_issuer):
    cardholder = CardholderFactory(issuer=other_issuer)
    phone = Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True)
    product = CardProductFactory(issuer=other_issuer)
    card = make_card(cardholder=cardholder)
    return {"cardholder": cardholder, "phone": phone, "product": product, "card": card}


def _requests(t):
    ch, ph, pr, ca = t["cardholder"].pk, t["phone"].pk, t["product"].pk, t["card"].pk
    return [
        ("get", f"/api/v1/cardholders/{ch}", None),
        ("patch", f"/api/v1/cardholders/{ch}", {"name": "Mallory"}),
        ("delete", f"/api/v1/cardholders/{ch}", None),
        ("get", f"/api/v1/cardholders/{ch}/phones", None),
        ("post", f"/api/v1/cardholders/{ch}/phones", {"number": "+33612345678"}),
        ("delete", f"/api/v1/cardholders/{ch}/phones/{ph}", None),
        ("get", f"/api/v1/card-products/{pr}", None),
        ("patch", f"/api/v1/card-products/{pr}", {"name": "Mallory"}),
        ("get", f"/api/v1/cards/{ca}", None),
        ("patch", f"/api/v1/cards/{ca}", {"status": "closed"}),
        ("delete", f"/api/v1/cards/{ca}", None),
    ]


@pytest.mark.parametrize("index", range(11))
def test_another_issuers_object_is_404_and_unchanged(api, theirs, index):
    method, path, body = _requests(theirs)[index]
    before = _snapshot()
    r = getattr(api, method)(path, body) if body is not None else getattr(api, method)(path)
    assert r.status_code == 404, (method, path)
    assert r.json()["error"]["code"] == "not_found"
    assert _snapshot() == before


def _snapshot():
    return (
        list(Cardholder.objects.values_list("pk", "name").order_by("pk")),
        list(Phone.objects.values_list("pk", "number").order_by("pk")),
        list(CardProduct.objects.values_list("pk", "name").order_by("pk")),
        list(Card.objects.values_list("pk", "status").order_by("pk")),
    )


def test_another_issuers_cardholder_cannot_receive_my_card(api, theirs):
    r = api.post(
        "/api/v1/cards",
        {"card_id": "x", "cardholder": str(theirs["cardholder"].pk), "pan": "5555555555554444", "expiry_month": 1, "expiry_year": 2099},
    )
    assert r.status_code == 400 and "cardholder" in r.json()["error"]["fields"]
    assert not Card.objects.filter(card_id="x").exists()


def test_lists_show_only_my_issuers_rows(api, theirs, issuer):
    mine = CardholderFactory(issuer=issuer)
    CardProductFactory(issuer=issuer, name="Mine")
    assert [c["id"] for c in api.get("/api/v1/cardholders").json()["results"]] == [str(mine.pk)]
    assert [p["name"] for p in api.get("/api/v1/card-products").json()] == ["Mine"]
    assert api.get(f"/api/v1/cardholders?external_id={theirs['cardholder'].external_id}").json()["results"] == []
