import pytest

from apps.cards.models import Phone

pytestmark = pytest.mark.django_db


def url(cardholder):
    return f"/api/v1/cardholders/{cardholder.pk}/phones"


def test_it_adds_a_phone_in_e164(api, cardholder):
    r = api.post(url(cardholder), {"number": "+819012345678", "verified": True})
    assert r.status_code == 201
    body = r.json()
    assert body["number"] == "+819012345678"
    assert body["masked"] == "+81 ••• •••• 5678"
    assert body["is_primary"] is True  # the first phone is primary unless told otherwise
    assert body["verified"] is True


@pytest.mark.parametrize("number", ["09012345678", "+81123", "+999123456789", "not a number", "+33 1 23", ""])
def test_an_invalid_number_is_400_naming_number(api, cardholder, number):
    r = api.post(url(cardholder), {"number": number})
    assert r.status_code == 400
    assert "number" in r.json()["error"]["fields"]
    assert not Phone.objects.exists()


def test_a_number_of_the_wrong_type_is_400(api, cardholder):
    r = api.post(url(cardholder), {"number": 819012345678})
    assert r.status_code == 400 and "number" in r.json()["error"]["fields"]


def test_a_new_primary_demotes_the_old_one(api, cardholder):
    first = api.post(url(cardholder), {"number": "+819012345678"}).json()
    second = api.post(url(cardholder), {"number": "+33612345678", "is_primary": True}).json()
    assert second["is_primary"] is True
    assert Phone.objects.get(pk=first["id"]).is_primary is False
    assert Phone.objects.filter(cardholder=cardholder, is_primary=True).count() == 1


def test_a_second_phone_is_not_primary_by_default(api, cardholder):
    api.post(url(cardholder), {"number": "+819012345678"})
    assert api.post(url(cardholder), {"number": "+33612345678"}).json()["is_primary"] is False


def test_the_same_number_twice_is_409(api, cardholder):
    api.post(url(cardholder), {"number": "+819012345678"})
    assert api.post(url(cardholder), {"number": "+819012345678"}).status_code == 409


def test_it_lists_and_removes_phones(api, cardholder):
    phone = api.post(url(cardholder), {"number": "+819012345678"}).json()
    assert [p["id"] for p in api.get(url(cardholder)).json()] == [phone["id"]]
    assert api.delete(f"{url(cardholder)}/{phone['id']}").status_code == 204
    assert api.delete(f"{url(cardholder)}/{phone['id']}").status_code == 404


def test_an_unknown_cardholder_is_404(api):
    r = api.post("/api/v1/cardholders/8a5c2a40-9a3e-4a53-8d5e-5f8d7a9b6c11/phones", {"number": "+819012345678"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_a_malformed_cardholder_id_is_404(api):
    assert api.post("/api/v1/cardholders/123/phones", {"number": "+819012345678"}).status_code == 404
