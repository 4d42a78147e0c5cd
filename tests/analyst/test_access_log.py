"""The access log: every transaction page an analyst opens and every export, recorded with one
INSERT; read in the admin by the issuer's admins (their issuer only) and superusers, not analysts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR
from apps.analyst.models import AccessRecord
from tests.analyst.conftest import client_for, make_staff, make_tx
from tests.factories import make_superuser

pytestmark = pytest.mark.django_db

ADMIN_LIST = "/admin/analyst/accessrecord/"


def test_a_transaction_page_is_recorded_with_one_insert_and_no_read(analyst, analyst_client, issuer):
    tx = make_tx(issuer)
    with CaptureQueriesContext(connection) as queries:
        assert analyst_client.get(f"/analyst/transactions/{tx.acs_trans_id}/").status_code == 200
    touching = [q["sql"] for q in queries.captured_queries if "analyst_accessrecord" in q["sql"]]
    assert len(touching) == 1 and touching[0].startswith("INSERT")
    record = AccessRecord.objects.get()
    assert (record.kind, record.user, record.actor, record.issuer, record.acs_trans_id) == (
        AccessRecord.VIEW, analyst, analyst.username, issuer, tx.acs_trans_id)


def test_a_page_not_found_is_not_recorded(analyst_client, other_issuer):
    tx = make_tx(other_issuer)
    assert analyst_client.get(f"/analyst/transactions/{tx.acs_trans_id}/").status_code == 404
    assert not AccessRecord.objects.exists()


def test_a_streamed_export_is_recorded_with_its_filters(analyst, analyst_client, issuer):
    make_tx(issuer, pan_last4="4242")
    response = analyst_client.get("/analyst/transactions.csv", {"last4": "4242"})
    b"".join(response.streaming_content)
    record = AccessRecord.objects.get()
    assert record.kind == AccessRecord.EXPORT and record.filters == {"last4": "4242"}
    assert record.export_id is not None and record.user == analyst


@pytest.fixture
def records(issuer, other_issuer):
    ours = AccessRecord.objects.create(issuer=issuer, actor="aiko", kind=AccessRecord.VIEW)
    theirs = AccessRecord.objects.create(issuer=other_issuer, actor="bob", kind=AccessRecord.EXPORT)
    return ours, theirs


def test_the_issuer_admin_reads_their_issuers_log_only(issuer, records):
    ours, theirs = records
    client = client_for(make_staff(issuer, ISSUER_ADMIN))
    page = client.get(ADMIN_LIST)
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [ours]
    assert client.get(f"{ADMIN_LIST}{ours.pk}/change/").status_code == 200
    assert client.get(f"{ADMIN_LIST}{theirs.pk}/change/").status_code == 302  # not found: back to the list


def test_the_superuser_reads_every_issuers_log(records):
    page = client_for(make_superuser()).get(ADMIN_LIST)
    assert page.status_code == 200 and set(page.context["cl"].result_list) == set(records)


@pytest.mark.parametrize("role", [ANALYST, OPERATOR])
def test_analysts_and_operators_do_not_read_it(issuer, records, role):
    assert client_for(make_staff(issuer, role)).get(ADMIN_LIST).status_code == 403


def test_anonymous_is_sent_to_the_login(records):
    from django.test import Client

    response = Client().get(ADMIN_LIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_nobody_adds_changes_or_deletes_a_record(issuer, records):
    ours, _ = records
    for user in (make_staff(issuer, ISSUER_ADMIN), make_superuser()):
        client = client_for(user)
        assert client.get(f"{ADMIN_LIST}add/").status_code == 403
        assert client.post(f"{ADMIN_LIST}{ours.pk}/change/", {"actor": "someone"}).status_code == 403
        assert client.post(f"{ADMIN_LIST}{ours.pk}/delete/", {"post": "yes"}).status_code == 403
    ours.refresh_from_db()
    assert ours.actor == "aiko"
