"""GET /api/v1/cards (SPEC §5.1): the issuer's cards, filtered by cardholder, card_id, status and
last 4, a page at a time; another issuer's cards never appear."""

from urllib.parse import urlsplit

import pytest

from apps.cards.models import Card
from tests.factories import CardholderFactory, make_card, new_pan

pytestmark = pytest.mark.django_db

URL = "/api/v1/cards"


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def follow(api, link: str):
    parts = urlsplit(link)
    return api.get(f"{parts.path}?{parts.query}")


def test_it_lists_the_issuers_cards_newest_first_and_never_a_pan(api, cardholder):
    first = make_card(cardholder=cardholder, pan="4111111111111111")
    second = make_card(cardholder=cardholder)
    r = api.get(URL)
    assert ids(r) == [str(second.pk), str(first.pk)]
    assert r.json()["results"][1]["last4"] == "1111"
    assert "4111111111111111" not in r.content.decode()


def test_another_issuers_cards_are_never_listed(api, other_api, cardholder, other_issuer):
    mine = make_card(cardholder=cardholder)
    theirs = make_card(cardholder=CardholderFactory(issuer=other_issuer))
    assert ids(api.get(URL)) == [str(mine.pk)]
    assert ids(other_api.get(URL)) == [str(theirs.pk)]
    # Filtering by the other issuer's cardholder or card_id finds nothing, not an error.
    assert ids(api.get(URL, {"cardholder": str(theirs.cardholder_id)})) == []
    assert ids(api.get(URL, {"card_id": theirs.card_id})) == []


def test_it_finds_a_card_by_its_card_id(api, cardholder):
    make_card(cardholder=cardholder, card_id="acct-1")
    wanted = make_card(cardholder=cardholder, card_id="acct-2")
    r = api.get(URL, {"card_id": "acct-2"})
    assert ids(r) == [str(wanted.pk)]
    assert r.json()["results"][0]["card_id"] == "acct-2"


def test_it_filters_by_cardholder_status_and_last4(api, issuer, cardholder):
    other_holder = CardholderFactory(issuer=issuer)
    active = make_card(cardholder=cardholder, pan=new_pan("4111"))
    suspended = make_card(cardholder=cardholder, status=Card.SUSPENDED)
    elsewhere = make_card(cardholder=other_holder)

    assert set(ids(api.get(URL, {"cardholder": str(cardholder.pk)}))) == {str(active.pk), str(suspended.pk)}
    assert ids(api.get(URL, {"status": "suspended"})) == [str(suspended.pk)]
    assert ids(api.get(URL, {"last4": elsewhere.last4, "cardholder": str(other_holder.pk)})) == [str(elsewhere.pk)]
    assert ids(api.get(URL, {"cardholder": str(other_holder.pk), "status": "suspended"})) == []


def test_pages_follow_next_and_previous_without_skipping_or_repeating(api, cardholder):
    cards = [make_card(cardholder=cardholder) for _ in range(5)]
    newest_first = [str(c.pk) for c in reversed(cards)]

    page1 = api.get(URL, {"limit": 2})
    page2 = follow(api, page1.json()["next"])
    page3 = follow(api, page2.json()["next"])
    assert ids(page1) + ids(page2) + ids(page3) == newest_first
    assert page3.json()["next"] is None
    assert ids(follow(api, page2.json()["previous"])) == ids(page1)


@pytest.mark.parametrize(
    "query, field",
    [
        ({"status": "frozen"}, "status"),
        ({"last4": "12a4"}, "last4"),
        ({"last4": "123"}, "last4"),
        ({"cardholder": "not-a-uuid"}, "cardholder"),
        ({"card_id": "no spaces"}, "card_id"),
        ({"cursor": "garbage"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"staus": "active"}, "staus"),
    ],
)
def test_a_bad_filter_is_400_naming_it(api, cardholder, query, field):
    r = api.get(URL, query)
    assert r.status_code == 400
    assert field in r.json()["error"]["fields"]


def test_an_unknown_status_lists_the_allowed_values(api):
    message = api.get(URL, {"status": "frozen"}).json()["error"]["fields"]["status"][0]
    for value in ("active", "suspended", "lost_stolen", "closed"):
        assert f'"{value}"' in message


def test_the_list_needs_a_key(anon_api):
    assert anon_api.get(URL).status_code == 401
