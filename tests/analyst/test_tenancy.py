"""Another issuer's transactions do not exist for an analyst: not listed, not found, not exported,
not counted (SPEC §7.5)."""

import pytest

from apps.sms.services import sms_delivery_create
from tests.analyst.conftest import export_rows, make_tx

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(other_issuer):
    return make_tx(other_issuer, merchant_name="Theirs Shop", pan_last4="9876")


def test_another_issuers_transaction_is_not_found(analyst_client, theirs):
    response = analyst_client.get(f"/analyst/transactions/{theirs.acs_trans_id}/")
    assert response.status_code == 404
    assert "Theirs Shop" not in response.content.decode()


def test_it_is_never_listed_whatever_the_filter(analyst_client, issuer, theirs):
    make_tx(issuer, merchant_name="Ours Shop")
    for query in ({}, {"acs_trans_id": str(theirs.acs_trans_id)}, {"ds_trans_id": str(theirs.ds_trans_id)},
                  {"merchant": "Theirs"}, {"last4": "9876"}):
        response = analyst_client.get("/analyst/", query)
        html = response.content.decode()
        assert f"/analyst/transactions/{theirs.acs_trans_id}/" not in html and "Theirs Shop" not in html, query
        assert theirs not in [row["tx"] for row in response.context["rows"]]


def test_it_is_never_exported(analyst_client, issuer, theirs):
    ours = make_tx(issuer)
    response = analyst_client.get("/analyst/transactions.csv")
    ids = {row["acs_trans_id"] for row in export_rows(b"".join(response.streaming_content).decode())}
    assert ids == {str(ours.acs_trans_id)}


def test_it_is_not_counted_on_the_dashboard(analyst_client, issuer, other_issuer, theirs):
    make_tx(issuer)
    sms_delivery_create(issuer=other_issuer, to="+819011112222", body="x 123456", secret="123456")
    response = analyst_client.get("/analyst/dashboard/")
    totals = response.context["totals"]
    assert totals["transactions"] == 1 and totals["sms"] == 0
