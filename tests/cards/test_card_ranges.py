"""GET /api/v1/card-ranges (SPEC §5.1): the issuer's grants as EMV cardRangeData for the DSs."""

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from apps.cards.models import BinRange
from apps.threeds.models import RiskPolicy
from tests.conftest import JsonClient
from tests.factories import CardProductFactory, IssuerFactory, client_for, grant, make_api_key, make_staff, make_superuser

pytestmark = pytest.mark.django_db

METHOD_URL = "https://acs.example/3ds/v2/method"


def client_of(issuer) -> JsonClient:
    client = JsonClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(issuer)}")
    return client


def product(issuer, network, ranges, co_badge=""):
    p = CardProductFactory(issuer=issuer, network=network, co_badge=co_badge)
    for start, end in ranges:
        BinRange.objects.create(product=p, start=start, end=end)
    return p


def entry(start, end, network, acs_info_ind=("01",)):
    return {
        "startRange": start, "endRange": end, "network": network, "actionInd": "A",
        "acsStartProtocolVersion": "2.1.0", "acsEndProtocolVersion": "2.3.1",
        "threeDSMethodURL": METHOD_URL, "acsInfoInd": list(acs_info_ind),
    }


@pytest.fixture
def bank():
    """Two products in a grant they cover in part, a grant no product holds, an Amex grant and a
    grant of no known network."""
    issuer = IssuerFactory()
    grant(issuer, "411111", "411112")
    grant(issuer, "5500000000", "5500000099")
    grant(issuer, "340000")
    grant(issuer, "990000")
    product(issuer, "visa", [("411111", "411111")])
    product(issuer, "cartes_bancaires", [("41111200", "41111249")], co_badge="visa")
    return issuer


@override_settings(PUBLIC_BASE_URL="https://acs.example")
def test_the_list_covers_the_grants_with_products_and_prefix_networks(bank):
    r = client_of(bank).get("/api/v1/card-ranges")
    assert r.status_code == 200, r.content
    assert r.json() == {"cardRangeData": [
        entry("340000000000000", "340000999999999", "amex"),  # 15-digit PANs
        entry("4111110000000000", "4111119999999999", "visa"),
        # The co-badged product goes to both DSs.
        entry("4111120000000000", "4111124999999999", "cartes_bancaires"),
        entry("4111120000000000", "4111124999999999", "visa"),
        # The rest of the grant, held by no product: its network comes from the prefix.
        entry("4111125000000000", "4111129999999999", "visa"),
        entry("5500000000000000", "5500000099999999", "mastercard"),
        # 990000: no network, no product, nothing for a DS.
    ]}


@override_settings(PUBLIC_BASE_URL="https://acs.example")
def test_attempts_are_advertised_only_when_the_policy_answers_them(bank):
    RiskPolicy.objects.create(issuer=bank, no_method_outcome="A")
    data = client_of(bank).get("/api/v1/card-ranges").json()["cardRangeData"]
    assert data and all(e["acsInfoInd"] == ["01", "02"] for e in data)


def test_a_grant_across_networks_is_cut_where_the_network_changes():
    issuer = IssuerFactory()
    grant(issuer, "399999", "400000")
    grant(issuer, "222099", "222100")
    data = client_of(issuer).get("/api/v1/card-ranges").json()["cardRangeData"]
    assert [(e["startRange"], e["endRange"], e["network"]) for e in data] == [
        ("2221000000000000", "2221009999999999", "mastercard"),  # 222099: no network
        ("4000000000000000", "4000009999999999", "visa"),  # 399999: no network
    ]


def test_a_range_longer_than_16_digits_keeps_19_digit_bounds():
    issuer = IssuerFactory()
    grant(issuer, "41111300000")
    product(issuer, "visa", [("41111300000000001", "41111300000000002")])
    data = client_of(issuer).get("/api/v1/card-ranges").json()["cardRangeData"]
    assert [(e["startRange"], e["endRange"]) for e in data] == [
        ("4111130000000000000", "4111130000000000099"),
        ("4111130000000000100", "4111130000000000299"),  # the product's 17-digit prefixes
        ("4111130000000000300", "4111130000099999999"),
    ]


def test_another_issuers_ranges_never_appear(bank):
    other = IssuerFactory()
    grant(other, "422222")
    grant(other, "222300")
    product(other, "mastercard", [("222400", "222400")])  # outside its grants (legacy data): not its to give
    mine = client_of(bank).get("/api/v1/card-ranges").json()["cardRangeData"]
    theirs = client_of(other).get("/api/v1/card-ranges").json()["cardRangeData"]
    assert not {e["startRange"][:6] for e in mine} & {"422222", "222300"}
    assert {e["startRange"][:6] for e in theirs} == {"422222", "222300"}
    assert not {e["startRange"][:6] for e in theirs} & {"411111", "411112", "550000", "340000"}


def test_an_issuer_without_grants_has_an_empty_list():
    assert client_of(IssuerFactory()).get("/api/v1/card-ranges").json() == {"cardRangeData": []}


@pytest.mark.parametrize("authorization", [None, "Bearer ik_nope_nope", "Basic eDp5"])
def test_an_api_key_is_required(bank, authorization):
    client = JsonClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    r = client.get("/api/v1/card-ranges")
    assert r.status_code == 401 and r["Content-Type"].startswith("application/json")
    assert r.json()["error"]["code"] and "WWW-Authenticate" in r


def test_unknown_query_parameters_are_refused(bank):
    r = client_of(bank).get("/api/v1/card-ranges?network=visa")
    assert r.status_code == 400 and "network" in r.json()["error"]["fields"]


# ---------------------------------------------------------------- admin download, per network (superusers)


def test_a_superuser_downloads_every_issuers_ranges_of_one_network(bank):
    other = IssuerFactory()
    grant(other, "422222")
    grant(other, "5100000000")
    r = client_for(make_superuser()).get(reverse("admin:threeds_card_ranges", args=["visa"]))
    assert r.status_code == 200 and 'filename="card-ranges-visa.json"' in r["Content-Disposition"]
    data = r.json()["cardRangeData"]
    assert {e["network"] for e in data} == {"visa"}
    assert [e["startRange"] for e in data] == ["4111110000000000", "4111120000000000", "4111125000000000", "4222220000000000"]
    mastercard = client_for(make_superuser("root2")).get(reverse("admin:threeds_card_ranges", args=["mastercard"])).json()
    assert [e["startRange"] for e in mastercard["cardRangeData"]] == ["5100000000000000", "5500000000000000"]


def test_only_a_superuser_downloads_ranges(bank):
    url = reverse("admin:threeds_card_ranges", args=["visa"])
    assert client_for(make_staff(bank, None)).get(url).status_code == 403
    assert Client().get(url).status_code == 302  # to the admin login
    assert client_for(make_superuser()).get(reverse("admin:threeds_card_ranges", args=["nope"])).status_code == 404
