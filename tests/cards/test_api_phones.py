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


# ---------------------------------------------------------------- PATCH (SPEC §5.1)


def patch(api, cardholder, phone, body):
    return api.patch(f"{url(cardholder)}/{phone.pk}", body)


@pytest.fixture
def phones(cardholder):
    from tests.factories import make_phone

    return make_phone(cardholder, "+819012345678"), make_phone(cardholder, "+33612345678", is_primary=False, verified=False)


def test_patch_changes_the_number_and_a_new_number_is_unverified(api, cardholder, phones):
    primary, _ = phones
    r = patch(api, cardholder, primary, {"number": "+819087654321"})
    assert r.status_code == 200, r.content
    assert r.json()["number"] == "+819087654321" and r.json()["verified"] is False
    primary.refresh_from_db()
    assert primary.number.as_e164 == "+819087654321" and primary.verified is False


def test_patch_may_change_the_number_and_say_it_is_verified(api, cardholder, phones):
    primary, _ = phones
    r = patch(api, cardholder, primary, {"number": "+819087654321", "verified": True})
    assert r.json()["verified"] is True


def test_patch_makes_a_phone_primary_and_keeps_one_primary(api, cardholder, phones):
    primary, second = phones
    r = patch(api, cardholder, second, {"is_primary": True, "verified": True})
    assert r.status_code == 200 and r.json()["is_primary"] is True and r.json()["verified"] is True
    assert list(Phone.objects.filter(cardholder=cardholder, is_primary=True)) == [second]
    primary.refresh_from_db()
    assert primary.is_primary is False


@pytest.mark.parametrize("number", ["09012345678", "+81123", "not a number", ""])
def test_patch_with_an_invalid_number_is_400_naming_number_and_changes_nothing(api, cardholder, phones, number):
    primary, _ = phones
    r = patch(api, cardholder, primary, {"number": number, "is_primary": False})
    assert r.status_code == 400 and "number" in r.json()["error"]["fields"]
    primary.refresh_from_db()
    assert primary.number.as_e164 == "+819012345678" and primary.is_primary is True


def test_patch_to_a_number_the_cardholder_has_is_409(api, cardholder, phones):
    primary, second = phones
    r = patch(api, cardholder, primary, {"number": second.number.as_e164})
    assert r.status_code == 409 and "number" in r.json()["error"]["fields"]


@pytest.mark.parametrize("body, field", [({"verified": "yes"}, "verified"), ({"is_primary": 1}, "is_primary"), ({"colour": "red"}, "colour")])
def test_patch_refuses_wrong_types_and_unknown_fields(api, cardholder, phones, body, field):
    r = patch(api, cardholder, phones[0], body)
    assert r.status_code == 400 and field in r.json()["error"]["fields"]


def test_patch_of_another_issuers_phone_is_404(other_api, cardholder, phones):
    r = patch(other_api, cardholder, phones[0], {"verified": False})
    assert r.status_code == 404
    phones[0].refresh_from_db()
    assert phones[0].verified is True


def test_patch_of_a_phone_under_another_cardholder_is_404(api, issuer, phones):
    from tests.factories import CardholderFactory

    stranger = CardholderFactory(issuer=issuer)
    assert patch(api, stranger, phones[0], {"verified": False}).status_code == 404


def test_patch_is_audited_with_masked_numbers(api, cardholder, phones):
    from apps.audit.models import AuditEvent

    patch(api, cardholder, phones[0], {"number": "+819087654321"})
    event = AuditEvent.objects.get(kind="phone.updated")
    assert event.data["before"]["number"] == "+81 ••• •••• 5678"
    assert event.data["after"]["number"] == "+81 ••• •••• 4321"
    assert "+819087654321" not in str(event.data)
