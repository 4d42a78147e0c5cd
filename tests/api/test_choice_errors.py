"""A value outside a field's choices is a 400 that lists the allowed values, in every API:
apps.core.serializers.ChoiceField is the one choice field."""

import pytest

pytestmark = pytest.mark.django_db


def message(response, field: str) -> str:
    assert response.status_code == 400, response.content
    return " ".join(response.json()["error"]["fields"][field])


def test_a_card_status_lists_the_statuses(api, cardholder):
    from tests.factories import make_card

    card = make_card(cardholder=cardholder)
    text = message(api.patch(f"/api/v1/cards/{card.pk}", {"status": "blocked"}), "status")
    assert '"blocked" is not a valid choice' in text
    assert all(f'"{v}"' in text for v in ("active", "suspended", "lost_stolen", "closed"))


def test_a_cardholder_locale_lists_the_locales(api):
    text = message(api.post("/api/v1/cardholders", {"external_id": "c-1", "name": "A", "locale": "de"}), "locale")
    assert all(f'"{v}"' in text for v in ("en", "ja", "fr"))


def test_a_product_network_lists_the_networks(api):
    body = {"name": "P", "network": "amex", "bin_ranges": []}
    text = message(api.post("/api/v1/card-products", body), "network")
    assert all(f'"{v}"' in text for v in ("visa", "mastercard", "cartes_bancaires"))


def test_a_non_string_choice_lists_them_too(api, cardholder):
    from tests.factories import make_card

    card = make_card(cardholder=cardholder)
    assert '"active"' in message(api.patch(f"/api/v1/cards/{card.pk}", {"status": 1}), "status")


def test_transaction_filters_list_their_values(api):
    text = message(api.get("/api/v1/transactions", {"status": "Q"}), "status")
    assert all(f'"{v}"' in text for v in ("Y", "A", "N", "U", "R", "C"))
    assert '"sms_otp"' in message(api.get("/api/v1/transactions", {"method": "voice"}), "method")
