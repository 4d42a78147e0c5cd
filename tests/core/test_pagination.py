"""The one keyset pagination (apps.core.pagination): rows sharing a time are neither skipped nor
repeated, forward and backwards; the last page says so; a tampered cursor is a 400 in the API (the
cardholder and transaction lists use it, the analysts' list too)."""

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from apps.cards.models import Cardholder
from apps.core.pagination import Cursor, InvalidCursor, keyset_page
from tests.factories import CardholderFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def cardholders(issuer):
    """25 cardholders on 5 timestamps: every page boundary falls inside a run of equal times."""
    rows = [CardholderFactory(issuer=issuer) for _ in range(25)]
    for i, row in enumerate(rows):
        Cardholder.objects.filter(pk=row.pk).update(created_at=T0 + timedelta(seconds=i // 5))
    return sorted(Cardholder.objects.filter(issuer=issuer), key=lambda c: (c.created_at, c.pk), reverse=True)


def walk(queryset, *, size: int, backwards_from=None) -> list[list]:
    pages, cursor = [], backwards_from
    while True:
        page = keyset_page(queryset, cursor=cursor, size=size)
        pages.append(page.rows)
        cursor = page.previous_cursor if backwards_from else page.next_cursor
        if cursor is None:
            return pages


@pytest.mark.parametrize("size", [1, 3, 4, 5, 7, 25, 200])
def test_ties_on_the_time_neither_skip_nor_repeat_a_row(issuer, cardholders, size):
    pages = walk(Cardholder.objects.filter(issuer=issuer), size=size)
    assert [c.pk for page in pages for c in page] == [c.pk for c in cardholders]
    assert all(len(page) == size for page in pages[:-1])


def test_walking_back_gives_the_same_pages_newest_first(issuer, cardholders):
    qs = Cardholder.objects.filter(issuer=issuer)
    oldest = Cursor.before(cardholders[-1])
    back = walk(qs, size=4, backwards_from=oldest)
    assert [c.pk for page in reversed(back) for c in page] == [c.pk for c in cardholders[:-1]]
    assert all(page == sorted(page, key=lambda c: (c.created_at, c.pk), reverse=True) for page in back)


def test_the_last_page_has_no_next_and_the_first_no_previous(issuer, cardholders):
    qs = Cardholder.objects.filter(issuer=issuer)
    first = keyset_page(qs, cursor=None, size=10)
    assert first.previous_cursor is None and first.next_cursor == Cursor.after(cardholders[9])
    last = keyset_page(qs, cursor=Cursor.after(cardholders[19]), size=10)
    assert [c.pk for c in last.rows] == [c.pk for c in cardholders[20:]]
    assert last.next_cursor is None and last.previous_cursor == Cursor.before(cardholders[20])
    exact = keyset_page(qs, cursor=Cursor.after(cardholders[14]), size=10)
    assert len(exact.rows) == 10 and exact.next_cursor is None  # a full last page: no empty page after it


def test_an_empty_list_is_one_empty_page(issuer):
    page = keyset_page(Cardholder.objects.filter(issuer=issuer), cursor=None, size=10)
    assert (page.rows, page.next_cursor, page.previous_cursor) == ([], None, None)


def test_a_cursor_round_trips_and_is_opaque_url_safe_text():
    cursor = Cursor(T0, uuid.uuid4(), True)
    token = cursor.encode()
    assert Cursor.decode(token) == cursor
    assert token.isascii() and not set(token) & set("+/=")


def _token(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# Fixed values: every test process (pytest-xdist) must collect the same test ids.
SOME_ID = "5f0c2a54-3f47-4c39-9d8e-0b7f3a2e9c11"


@pytest.mark.parametrize(
    "token",
    [
        "garbage!", "bm90IGEgY3Vyc29y", _token({"a": 1}), _token(["2026-03-01T12:00:00", SOME_ID, False]),
        _token(["2026-03-01T12:00:00+00:00", "not-a-uuid", False]), _token(["2026-03-01T12:00:00+00:00", SOME_ID, "yes"]),
        _token(["yesterday", SOME_ID, False]), _token([1, 2]), "\u00e9\u00e9",
    ],
)
def test_a_tampered_cursor_does_not_decode(token):
    with pytest.raises(InvalidCursor):
        Cursor.decode(token)


@pytest.mark.parametrize("path", ["/api/v1/cardholders", "/api/v1/transactions"])
def test_the_api_answers_a_tampered_cursor_400_on_the_parameter(api, path):
    r = api.get(path, {"cursor": _token(["2026-03-01T12:00:00", "x", False])})
    assert r.status_code == 400
    assert r.json()["error"]["fields"] == {"cursor": ["Invalid cursor."]}


def test_the_api_walks_the_list_by_its_links_both_ways(api, issuer, cardholders):
    body = api.get("/api/v1/cardholders", {"limit": 4}).json()
    assert body["previous"] is None
    pages = [body]
    while body["next"]:
        body = api.get(body["next"]).json()
        pages.append(body)
    assert [c["id"] for page in pages for c in page["results"]] == [str(c.pk) for c in cardholders]
    back = [pages[-1]]
    while back[-1]["previous"]:
        back.append(api.get(back[-1]["previous"]).json())
    assert [[c["id"] for c in page["results"]] for page in reversed(back)] == [[c["id"] for c in page["results"]] for page in pages]
