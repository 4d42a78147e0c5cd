"""Keyset pagination: pages follow (created_at, acs_trans_id) descending, never skip or repeat a
row, even when many rows share one timestamp, and go back as well as forward."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.analyst import selectors
from apps.analyst.selectors import Cursor, Scope, TransactionFilters
from tests.analyst.conftest import make_tx

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def rows(issuer):
    """130 transactions over 5 instants: 26 share each timestamp."""
    return [make_tx(issuer, created_at=T0 + timedelta(seconds=i % 5)) for i in range(130)]


def expected_order(rows):
    return [t.acs_trans_id for t in sorted(rows, key=lambda t: (t.created_at, t.acs_trans_id), reverse=True)]


def walk(client, url="/analyst/", **query):
    seen, pages = [], 0
    response = client.get(url, query)
    while True:
        pages += 1
        seen += [row["tx"].acs_trans_id for row in response.context["rows"]]
        if not response.context["next_url"]:
            return seen, pages, response
        response = client.get(response.context["next_url"])


def test_pages_cover_every_row_once_in_order(analyst_client, rows):
    seen, pages, _ = walk(analyst_client)
    assert seen == expected_order(rows)
    assert pages == 3  # 50 + 50 + 30


def test_going_back_gives_the_same_pages(analyst_client, rows):
    first = analyst_client.get("/analyst/")
    second = analyst_client.get(first.context["next_url"])
    third = analyst_client.get(second.context["next_url"])
    back = analyst_client.get(third.context["previous_url"])
    assert [r["tx"].pk for r in back.context["rows"]] == [r["tx"].pk for r in second.context["rows"]]
    front = analyst_client.get(back.context["previous_url"])
    assert [r["tx"].pk for r in front.context["rows"]] == [r["tx"].pk for r in first.context["rows"]]
    assert front.context["previous_url"] is None


def test_rows_arriving_meanwhile_do_not_shift_the_next_page(analyst_client, issuer, rows):
    first = analyst_client.get("/analyst/")
    for _ in range(7):
        make_tx(issuer, created_at=T0 + timedelta(seconds=10))
    second = analyst_client.get(first.context["next_url"])
    assert [r["tx"].acs_trans_id for r in second.context["rows"]] == expected_order(rows)[50:100]


def test_the_filters_stay_on_every_page(analyst_client, issuer, rows):
    others = [make_tx(issuer, created_at=T0 + timedelta(seconds=i % 3), pan_last4="4242") for i in range(60)]
    seen, pages, _ = walk(analyst_client, last4="4242")
    assert seen == expected_order(others) and pages == 2


def test_a_page_never_counts_the_table(issuer, rows):
    with CaptureQueriesContext(connection) as queries:
        page = selectors.transaction_page(scope=Scope(issuer), filters=TransactionFilters(), cursor=None)
    assert len(page.rows) == 50
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "COUNT(" not in sql and "OFFSET" not in sql
    assert "LIMIT 51" in sql


def test_a_deep_page_starts_at_its_key_not_at_an_offset(issuer, rows):
    cursor = Cursor.after(sorted(rows, key=lambda t: (t.created_at, t.acs_trans_id))[40])
    with CaptureQueriesContext(connection) as queries:
        selectors.transaction_page(scope=Scope(issuer), filters=TransactionFilters(), cursor=cursor)
    main = queries.captured_queries[0]["sql"].upper()
    assert "OFFSET" not in main and '"CREATED_AT" <=' in main


def test_a_tampered_cursor_falls_back_to_the_first_page(analyst_client, rows):
    response = analyst_client.get("/analyst/", {"cursor": "bm90IGEgY3Vyc29y"})
    assert response.status_code == 200
    assert "no longer valid" in response.content.decode()
    assert len(response.context["rows"]) == 50


def test_cursor_round_trip():
    cursor = Cursor(T0, uuid.uuid4(), True)
    assert Cursor.decode(cursor.encode()) == cursor
