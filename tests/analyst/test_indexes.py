"""On PostgreSQL: the analyst's list is served in keyset order by an index for each selective
filter (no sort of the matching rows), and the merchant search has its trigram index. The plans and
timings on a million rows are in docs/BENCHMARKS-ANALYST.md; here the planner is only asked
whether an index *can* give the order (sorts and sequential scans priced out)."""

import pytest
from django.db import connection

from apps.analyst import selectors
from apps.analyst.selectors import Cursor, Scope, TransactionFilters
from apps.threeds.models import Challenge
from tests.analyst.conftest import make_tx

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans"),
]


def plan(qs) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_incremental_sort = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
    try:
        return qs.explain()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_sort")
            cursor.execute("RESET enable_incremental_sort")
            cursor.execute("RESET enable_seqscan")


@pytest.fixture
def issuer_rows(issuer):
    rows = [make_tx(issuer, pan_last4=f"{i:04d}", trans_status="YN"[i % 2]) for i in range(20)]
    rows += [make_tx(issuer, challenge={"method": Challenge.OOB}) for _ in range(5)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE threeds_transaction")
        cursor.execute("ANALYZE threeds_challenge")
    return rows


@pytest.mark.parametrize("filters, index", [
    (TransactionFilters(), "threeds_tx_issuer_keyset_idx"),
    (TransactionFilters(trans_status="N"), "threeds_tx_status_keyset_idx"),
    (TransactionFilters(last4="0007"), "threeds_tx_last4_keyset_idx"),
    (TransactionFilters(method="oob"), "threeds_tx_challenged_idx"),
])
def test_each_selective_filter_has_an_index_in_keyset_order(issuer, issuer_rows, filters, index):
    qs = selectors.transaction_page_queryset(scope=Scope(issuer), filters=filters, cursor=None, size=50)
    text = plan(qs)
    assert index in text and "Sort" not in text, text
    after = Cursor.after(issuer_rows[3])
    deep = plan(selectors.transaction_page_queryset(scope=Scope(issuer), filters=filters, cursor=after, size=50))
    assert index in deep and "Sort" not in deep and "created_at <=" in deep, deep


def test_the_merchant_search_has_a_trigram_index(issuer, issuer_rows):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'threeds_tx_merchant_trgm_idx'")
        [(definition,)] = cursor.fetchall()
    assert "gin" in definition and "gin_trgm_ops" in definition and "upper" in definition
    # Every issuer (a superuser): no issuer index competes with the trigram index on a tiny table.
    qs = selectors.transaction_list(scope=Scope(None), filters=TransactionFilters(merchant="book", merchant_match="contains"))
    assert "threeds_tx_merchant_trgm_idx" in plan(qs.order_by())
