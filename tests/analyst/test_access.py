"""Who may enter the workspace, and what every page carries (CSP, no caching)."""

import pytest
from django.test import Client

from apps.accounts.models import User
from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR
from tests.analyst.conftest import client_for, make_staff, make_tx

pytestmark = pytest.mark.django_db

PAGES = ["/analyst/", "/analyst/dashboard/", "/analyst/transactions.csv"]
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'")


@pytest.mark.parametrize("path", PAGES + ["/analyst/transactions/6f1f7a0e-3a51-4b8e-9d1c-5a4f1b2c3d4e/"])
def test_anonymous_users_are_sent_to_the_admin_login_and_back(path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/analyst/")


@pytest.mark.parametrize("role", [ANALYST, OPERATOR, ISSUER_ADMIN])
def test_every_role_of_an_issuer_may_read(issuer, role):
    client = client_for(make_staff(issuer, role))
    for path in PAGES:
        assert client.get(path).status_code == 200, path


def test_staff_without_an_issuer_is_refused(db):
    user = User.objects.create_user(username="lost", password="x", is_staff=True)  # not a superuser, no issuer
    response = client_for(user).get("/analyst/")
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()
    assert response["Content-Security-Policy"].startswith(CSP)


def test_staff_of_an_issuer_without_a_role_is_refused(issuer):
    assert client_for(make_staff(issuer, None)).get("/analyst/").status_code == 403


def test_a_user_who_is_not_staff_is_refused(issuer):
    user = make_staff(issuer, ANALYST)
    user.is_staff = False
    user.save()
    assert client_for(user).get("/analyst/dashboard/").status_code == 403


def test_superusers_see_every_issuer_and_can_narrow_to_one(issuer, other_issuer):
    ours, theirs = make_tx(issuer, merchant_name="Ours Shop"), make_tx(other_issuer, merchant_name="Theirs Shop")
    admin = User.objects.create_superuser(username="root", password="x")
    client = client_for(admin)
    page = client.get("/analyst/").content.decode()
    assert str(ours.acs_trans_id) in page and str(theirs.acs_trans_id) in page
    narrowed = client.get("/analyst/", {"issuer": other_issuer.issuer_id}).content.decode()
    assert str(theirs.acs_trans_id) in narrowed and str(ours.acs_trans_id) not in narrowed
    assert client.get(f"/analyst/transactions/{ours.acs_trans_id}/").status_code == 200


def test_an_issuer_filter_from_a_non_superuser_is_ignored(analyst_client, issuer, other_issuer):
    theirs = make_tx(other_issuer)
    page = analyst_client.get("/analyst/", {"issuer": other_issuer.issuer_id}).content.decode()
    assert str(theirs.acs_trans_id) not in page


@pytest.mark.parametrize("path", ["/analyst/", "/analyst/dashboard/"])
def test_pages_carry_a_strict_csp_and_are_never_cached(analyst_client, path):
    response = analyst_client.get(path)
    assert response["Content-Security-Policy"].startswith(CSP)
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "<script" not in html and "style=" not in html and "<style" not in html


def test_the_not_found_page_carries_the_csp_too(analyst_client):
    response = analyst_client.get("/analyst/transactions/not-a-uuid/")
    assert response.status_code == 404 and response["Content-Security-Policy"].startswith(CSP)


def test_it_only_reads(analyst_client):
    assert analyst_client.post("/analyst/", {}).status_code == 405
    assert analyst_client.post("/analyst/transactions.csv", {}).status_code == 405


def test_the_stylesheet_is_served_from_self(analyst_client):
    html = analyst_client.get("/analyst/").content.decode()
    assert '<link rel="stylesheet" href="/static/analyst/analyst.css">' in html
