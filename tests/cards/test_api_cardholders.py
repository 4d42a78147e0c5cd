import pytest

from apps.audit.models import AuditEvent
from apps.cards.models import Card, Cardholder, Phone
from tests.factories import CardholderFactory, make_card

pytestmark = pytest.mark.django_db


def test_it_creates_a_cardholder(api, issuer):
    r = api.post("/api/v1/cardholders", {"external_id": "cust-1", "name": "Hanako Yamada", "locale": "ja"})
    assert r.status_code == 201
    body = r.json()
    assert body["external_id"] == "cust-1" and body["locale"] == "ja" and body["id"]
    assert Cardholder.objects.get(pk=body["id"]).issuer == issuer
    assert AuditEvent.objects.filter(kind="cardholder.created", issuer=issuer).exists()


def test_locale_defaults_to_english(api):
    r = api.post("/api/v1/cardholders", {"external_id": "cust-1", "name": "A"})
    assert r.json()["locale"] == "en"


def test_it_refuses_an_unknown_locale(api):
    r = api.post("/api/v1/cardholders", {"external_id": "cust-1", "name": "A", "locale": "de"})
    assert r.status_code == 400
    assert list(r.json()["error"]["fields"]) == ["locale"]


def test_a_duplicate_external_id_is_409(api, cardholder):
    r = api.post("/api/v1/cardholders", {"external_id": cardholder.external_id, "name": "B"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "duplicate_external_id"


def test_the_same_external_id_may_exist_at_another_issuer(api, other_issuer):
    CardholderFactory(issuer=other_issuer, external_id="cust-9")
    assert api.post("/api/v1/cardholders", {"external_id": "cust-9", "name": "B"}).status_code == 201


def test_it_reads_updates_and_deletes_a_cardholder(api, cardholder):
    url = f"/api/v1/cardholders/{cardholder.pk}"
    assert api.get(url).json()["external_id"] == cardholder.external_id
    r = api.patch(url, {"name": "New Name", "locale": "fr"})
    assert r.status_code == 200 and r.json()["name"] == "New Name" and r.json()["locale"] == "fr"
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404


def test_deleting_a_cardholder_removes_cards_and_phones(api, cardholder):
    make_card(cardholder=cardholder)
    Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True)
    assert api.delete(f"/api/v1/cardholders/{cardholder.pk}").status_code == 204
    assert not Card.objects.exists() and not Phone.objects.exists()
    assert AuditEvent.objects.filter(kind="cardholder.deleted").get().data["cards_removed"] == 1


def test_it_lists_cardholders_with_a_cursor_and_filters_by_external_id(api, issuer, other_issuer):
    for i in range(5):
        CardholderFactory(issuer=issuer, external_id=f"c{i}")
    CardholderFactory(issuer=other_issuer, external_id="theirs")
    r = api.get("/api/v1/cardholders?limit=2")
    body = r.json()
    assert len(body["results"]) == 2 and body["next"]
    seen = [c["external_id"] for c in body["results"]]
    while body["next"]:
        body = api.get(body["next"]).json()
        seen += [c["external_id"] for c in body["results"]]
    assert sorted(seen) == [f"c{i}" for i in range(5)]
    assert [c["external_id"] for c in api.get("/api/v1/cardholders?external_id=c3").json()["results"]] == ["c3"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "A"}, "external_id"),
        ({"external_id": "x"}, "name"),
        ({"external_id": 123, "name": "A"}, "external_id"),
        ({"external_id": "x", "name": ["A"]}, "name"),
        ({"external_id": "x", "name": "A", "is_admin": True}, "is_admin"),
        ({"external_id": "x" * 65, "name": "A"}, "external_id"),
    ],
)
def test_bad_cardholder_input_is_400_naming_the_field(api, body, field):
    r = api.post("/api/v1/cardholders", body)
    assert r.status_code == 400
    assert field in r.json()["error"]["fields"]
    assert not Cardholder.objects.exists()


def test_patch_refuses_unknown_fields(api, cardholder):
    r = api.patch(f"/api/v1/cardholders/{cardholder.pk}", {"issuer": "other"})
    assert r.status_code == 400 and "issuer" in r.json()["error"]["fields"]


def test_a_json_array_body_is_400(api):
    r = api.post("/api/v1/cardholders", [1, 2])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "validation_error"
