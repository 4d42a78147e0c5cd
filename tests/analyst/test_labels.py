"""An analyst's label and note on a transaction: their only write (SPEC §5.6). POST with CSRF, in
the user's scope only, every change audited (no PAN), shown with who and when, filterable and
counted on the dashboard."""

import pytest
from django.test import Client

from apps.accounts.roles import ANALYST, ISSUER_ADMIN
from apps.analyst.models import TransactionLabel
from apps.audit.models import AuditEvent
from tests.analyst.conftest import client_for, make_staff, make_tx
from tests.factories import make_superuser

pytestmark = pytest.mark.django_db


def label_url(tx) -> str:
    return f"/analyst/transactions/{tx.acs_trans_id}/label"


def post_label(client, tx, label="fraud", note="Card testing pattern"):
    return client.post(label_url(tx), {"label": label, "note": note})


@pytest.mark.parametrize("who", ["analyst", "issuer admin", "superuser"])
def test_the_issuers_staff_and_superusers_label_a_transaction(issuer, who):
    user = {"analyst": lambda: make_staff(issuer, ANALYST), "issuer admin": lambda: make_staff(issuer, ISSUER_ADMIN),
            "superuser": make_superuser}[who]()
    tx = make_tx(issuer)
    response = post_label(client_for(user), tx)
    assert response.status_code == 303 and response["Location"] == f"/analyst/transactions/{tx.acs_trans_id}/#label"
    label = TransactionLabel.objects.get(transaction=tx)
    assert (label.label, label.note, label.labelled_by, label.issuer) == ("fraud", "Card testing pattern", user, issuer)


def test_anonymous_cannot_label(issuer):
    tx = make_tx(issuer)
    assert post_label(Client(), tx).status_code == 401
    assert not TransactionLabel.objects.exists()


def test_another_issuers_analyst_finds_no_such_transaction(issuer, other_issuer):
    tx = make_tx(issuer)
    response = post_label(client_for(make_staff(other_issuer, ANALYST)), tx)
    assert response.status_code == 404
    assert not TransactionLabel.objects.exists() and not AuditEvent.objects.filter(kind__startswith="analyst.label").exists()


def test_a_post_without_the_csrf_token_is_refused(issuer):
    tx = make_tx(issuer)
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_staff(issuer, ANALYST))
    assert post_label(client, tx).status_code == 403
    assert not TransactionLabel.objects.exists()


def test_get_is_not_a_way_to_label(issuer):
    tx = make_tx(issuer)
    assert client_for(make_staff(issuer, ANALYST)).get(label_url(tx), {"label": "fraud"}).status_code == 405


@pytest.mark.parametrize("form", [{"label": "maybe"}, {"label": "fraud", "note": "x" * 2001}, {"label": "", "note": "why?"}])
def test_bad_input_is_a_form_error_and_writes_nothing(issuer, form):
    tx = make_tx(issuer)
    response = client_for(make_staff(issuer, ANALYST)).post(label_url(tx), form)
    assert response.status_code == 400 and 'class="error"' in response.content.decode()
    assert not TransactionLabel.objects.exists() and not AuditEvent.objects.filter(kind__startswith="analyst.label").exists()


def test_every_change_is_audited_with_before_and_after_and_no_pan(issuer):
    analyst = make_staff(issuer, ANALYST)
    client = client_for(analyst)
    tx = make_tx(issuer)
    post_label(client, tx, "fraud", "first look")
    post_label(client, tx, "fraud", "first look")  # unchanged: no event
    post_label(client, tx, "genuine", "customer confirmed by phone 4111111111111111")
    post_label(client, tx, "", "")
    events = list(AuditEvent.objects.filter(kind__startswith="analyst.label").order_by("id"))
    assert [e.kind for e in events] == ["analyst.label_set", "analyst.label_set", "analyst.label_removed"]
    assert all(e.acs_trans_id == tx.acs_trans_id and e.issuer == issuer and e.actor == f"staff:{analyst.username}" for e in events)
    assert events[0].data == {"before": {"label": "", "note": ""}, "after": {"label": "fraud", "note": "first look"}}
    assert events[1].data["before"]["label"] == "fraud" and events[1].data["after"]["label"] == "genuine"
    assert "4111111111111111" not in str([e.data for e in events])  # the scrubber removes a PAN typed in a note
    assert not TransactionLabel.objects.exists()


def test_the_page_shows_the_label_with_who_and_when(issuer):
    analyst = make_staff(issuer, ANALYST, username="aiko")
    client = client_for(analyst)
    tx = make_tx(issuer)
    post_label(client, tx, "genuine", "Known customer")
    page = client.get(f"/analyst/transactions/{tx.acs_trans_id}/").content.decode()
    assert "Genuine" in page and "by aiko at" in page and "Known customer" in page and "Label saved." in page


def test_the_list_filters_by_label(analyst_client, issuer):
    fraud, genuine, _ = make_tx(issuer), make_tx(issuer), make_tx(issuer)
    post_label(analyst_client, fraud, "fraud", "")
    post_label(analyst_client, genuine, "genuine", "")

    def listed(**query):
        return {row["tx"].acs_trans_id for row in analyst_client.get("/analyst/", query).context["rows"]}

    assert listed(label="fraud") == {fraud.acs_trans_id}
    assert listed(label="genuine") == {genuine.acs_trans_id}
    assert listed(label="any") == {fraud.acs_trans_id, genuine.acs_trans_id}
    assert analyst_client.get("/analyst/", {"label": "nonsense"}).status_code == 200  # a form error, not a 500


def test_the_dashboard_counts_labels_by_how_the_acs_decided(analyst_client, issuer, other_issuer):
    post_label(analyst_client, make_tx(issuer), "fraud", "")  # frictionless, Y: fraud let through
    post_label(analyst_client, make_tx(issuer, challenge={}, trans_status="N"), "fraud", "")
    post_label(analyst_client, make_tx(issuer), "genuine", "")
    client_for(make_superuser()).post(label_url(make_tx(other_issuer)), {"label": "fraud"})
    labels = {label: s for label, _, s in analyst_client.get("/analyst/dashboard/").context["labels"]}
    f, g = labels["fraud"], labels["genuine"]
    assert (f.total, f.frictionless, f.challenged, f.authenticated) == (2, 1, 1, 1)
    assert (g.total, g.frictionless, g.authenticated) == (1, 1, 1)
