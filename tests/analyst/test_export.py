"""CSV export: streamed, UTF-8 with a header, the filtered list, cells that a spreadsheet would run
as formulas neutralised, and every export on record in the audit trail."""

import csv
import io

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.http import StreamingHttpResponse

from apps.accounts.models import User
from apps.analyst.selectors import EXPORT_HEADER
from apps.analyst.views import csv_cell, transaction_export_view
from apps.audit.models import AuditEvent
from tests.analyst.conftest import client_for, export_rows, make_tx

pytestmark = pytest.mark.django_db


def export(client, **query):
    response = client.get("/analyst/transactions.csv", query)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="transactions-')
    text = b"".join(response.streaming_content).decode("utf-8")
    return export_rows(text)


def test_it_streams_the_filtered_list_with_a_header(analyst_client, issuer):
    y = make_tx(issuer, merchant_name="Café Tokyo 東京", purchase_amount=12550, purchase_currency="978", purchase_exponent=2)
    make_tx(issuer, trans_status="N")
    response = analyst_client.get("/analyst/transactions.csv", {"trans_status": "Y"})
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.splitlines()[0] == ",".join(EXPORT_HEADER)
    [row] = export_rows(text)
    assert row["acs_trans_id"] == str(y.acs_trans_id) and row["merchant_name"] == "Café Tokyo 東京"
    assert (row["purchase_amount_minor"], row["purchase_amount"], row["purchase_currency"]) == ("12550", "125.50", "978")
    assert row["issuer_id"] == issuer.issuer_id and row["method"] == "" and row["trans_status"] == "Y"


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://evil\")", "+81 shop", "-1+1", "@SUM(A1)", "\tTab", "\rCR"])
def test_cells_that_would_run_as_formulas_are_prefixed(analyst_client, issuer, name):
    make_tx(issuer, merchant_name=name)
    [row] = export(analyst_client)
    assert row["merchant_name"] == "'" + name


def test_csv_cell():
    assert [csv_cell(v) for v in (None, 0, "=1", "a=1", "-", "")] == ["", "0", "'=1", "a=1", "'-", ""]


def test_the_export_is_recorded_with_who_which_filters_and_how_many_rows(analyst, analyst_client, issuer):
    for _ in range(3):
        make_tx(issuer, pan_last4="4242")
    make_tx(issuer)
    rows = export(analyst_client, last4="4242", merchant="tok")
    assert len(rows) == 3
    started = AuditEvent.objects.get(kind="analyst.export_started")
    finished = AuditEvent.objects.get(kind="analyst.export_finished")
    assert started.issuer == issuer and started.actor == f"staff:{analyst.username}"
    assert started.data["filters"] == {"last4": "4242", "merchant": "tok", "merchant_match": "prefix"}
    assert finished.data["rows"] == 3 and finished.data["completed"] is True
    assert finished.data["export"] == started.data["export"]


def test_an_abandoned_download_is_recorded_as_incomplete(analyst, issuer, rf):
    for _ in range(3):
        make_tx(issuer)
    request = rf.get("/analyst/transactions.csv")
    request.user = analyst
    response = transaction_export_view(request)
    stream = iter(response.streaming_content)
    next(stream), next(stream)  # the header and one row, then the client goes away
    # The WSGI server closes the response; keep the test's own connection open meanwhile.
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
    finished = AuditEvent.objects.get(kind="analyst.export_finished")
    assert (finished.data["rows"], finished.data["completed"]) == (1, False)


def test_a_superuser_chooses_the_issuer_to_export(issuer, other_issuer):
    theirs = make_tx(other_issuer)
    make_tx(issuer)
    client = client_for(User.objects.create_superuser(username="root", password="x"))
    response = client.get("/analyst/transactions.csv")
    assert response.status_code == 400 and b"Choose an issuer" in response.content
    rows = export(client, issuer=other_issuer.issuer_id)
    assert [r["acs_trans_id"] for r in rows] == [str(theirs.acs_trans_id)]
    assert AuditEvent.objects.get(kind="analyst.export_finished").issuer == other_issuer


def test_invalid_filters_export_nothing(analyst_client, issuer):
    make_tx(issuer)
    response = analyst_client.get("/analyst/transactions.csv", {"amount_min": "5"})
    assert response.status_code == 400 and b"currency" in response.content
    assert not AuditEvent.objects.filter(kind__startswith="analyst.export").exists()
