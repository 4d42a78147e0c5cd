import pytest

from apps.cards.models import CardProduct
from tests.factories import CardProductFactory, grant, make_card, new_pan

pytestmark = pytest.mark.django_db


def test_it_creates_and_lists_products(api):
    r = api.post("/api/v1/card-products", {"name": "Gold", "network": "visa", "bin_ranges": [{"start": "411111", "end": "411112"}]})
    assert r.status_code == 201
    body = r.json()
    assert body["network"] == "visa" and body["co_badge"] is None
    assert body["bin_ranges"] == [{"start": "411111", "end": "411112"}]
    assert [p["name"] for p in api.get("/api/v1/card-products").json()] == ["Gold"]
    assert api.get(f"/api/v1/card-products/{body['id']}").json()["name"] == "Gold"


def test_cartes_bancaires_needs_a_co_badge(api):
    r = api.post("/api/v1/card-products", {"name": "CB", "network": "cartes_bancaires", "bin_ranges": []})
    assert r.status_code == 400 and "co_badge" in r.json()["error"]["fields"]
    r = api.post("/api/v1/card-products", {"name": "CB", "network": "cartes_bancaires", "co_badge": "mastercard", "bin_ranges": []})
    assert r.status_code == 201 and r.json()["co_badge"] == "mastercard"


def test_only_cartes_bancaires_is_co_badged(api):
    r = api.post("/api/v1/card-products", {"name": "V", "network": "visa", "co_badge": "mastercard", "bin_ranges": []})
    assert r.status_code == 400 and "co_badge" in r.json()["error"]["fields"]


@pytest.mark.parametrize("network", ["amex", "VISA", "", 1])
def test_a_product_network_is_one_of_three(api, network):
    r = api.post("/api/v1/card-products", {"name": "X", "network": network, "bin_ranges": []})
    assert r.status_code == 400 and "network" in r.json()["error"]["fields"]


@pytest.mark.parametrize(
    "ranges",
    [
        [{"start": "4111", "end": "4112"}],  # too short
        [{"start": "411111", "end": "4111119"}],  # lengths differ
        [{"start": "411119", "end": "411111"}],  # reversed
        [{"start": "41111a", "end": "411119"}],
        [{"start": "411111"}],
        [{"start": "411110", "end": "411115"}, {"start": "411115", "end": "411119"}],  # overlap
        "411111",
    ],
)
def test_bad_bin_ranges_are_400(api, ranges):
    r = api.post("/api/v1/card-products", {"name": "X", "network": "visa", "bin_ranges": ranges})
    assert r.status_code == 400
    assert any(k.startswith("bin_ranges") for k in r.json()["error"]["fields"])
    assert not CardProduct.objects.exists()


def test_ranges_may_not_overlap_another_product_of_the_issuer(api):
    api.post("/api/v1/card-products", {"name": "A", "network": "visa", "bin_ranges": [{"start": "41111100", "end": "41111199"}]})
    r = api.post("/api/v1/card-products", {"name": "B", "network": "visa", "bin_ranges": [{"start": "411111", "end": "411111"}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "overlapping_bin_range"


def test_a_duplicate_name_is_409(api):
    api.post("/api/v1/card-products", {"name": "A", "network": "visa", "bin_ranges": []})
    assert api.post("/api/v1/card-products", {"name": "A", "network": "visa", "bin_ranges": []}).status_code == 409


def test_patch_updates_ranges_and_moves_cards_to_the_new_network(api, issuer, cardholder):
    grant(issuer, "497000", "497099")
    product = CardProductFactory(issuer=issuer, network="visa")
    card = make_card(cardholder=cardholder, pan=new_pan("4970"), product=product)
    r = api.patch(
        f"/api/v1/card-products/{product.pk}",
        {"network": "cartes_bancaires", "co_badge": "visa", "bin_ranges": [{"start": "497000", "end": "497099"}]},
    )
    assert r.status_code == 200
    assert r.json()["bin_ranges"] == [{"start": "497000", "end": "497099"}]
    card.refresh_from_db()
    assert (card.network, card.co_badge) == ("cartes_bancaires", "visa")


def test_patch_can_keep_its_own_ranges(api, issuer):
    product = CardProductFactory(issuer=issuer)
    product.bin_ranges.create(start="411111", end="411111")
    r = api.patch(f"/api/v1/card-products/{product.pk}", {"bin_ranges": [{"start": "411111", "end": "411112"}]})
    assert r.status_code == 200
