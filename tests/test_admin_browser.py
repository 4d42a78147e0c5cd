"""The admin under the site's Content-Security-Policy, in a real headless Chromium: sign in, open a
changelist, a change form and the add form, and Swagger UI under its own policy — and the
browser reports no CSP violation on the way."""

from pathlib import Path

import pytest

from apps.accounts.models import User
from tests.analyst.test_browser import csp_violations, page  # noqa: F401 (fixture)
from tests.factories import CardholderFactory, IssuerFactory
from tests.support.fixtures import CHROMIUM, chromium  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # the live server's thread must see committed rows
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


def test_the_admin_works_under_the_csp(page, live_server):  # noqa: F811
    User.objects.create_superuser(username="root", password="a long enough password 1", email="root@bank.example")
    cardholder = CardholderFactory(issuer=IssuerFactory(name="Sakura Bank"))

    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "root")
    page.fill("#id_password", "a long enough password 1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/admin/cards/cardholder/")
    assert page.locator("#result_list tbody tr").count() == 1
    page.goto(f"{live_server.url}/admin/cards/cardholder/{cardholder.pk}/change/")
    assert page.locator("form").count() >= 1
    page.goto(f"{live_server.url}/admin/cards/cardholder/add/")
    page.goto(f"{live_server.url}/admin/issuers/issuer/")
    # The admin's own scripts ran: the sidebar toggle exists only when nav_sidebar.js did its work.
    assert page.evaluate("typeof django !== 'undefined'")
    assert csp_violations(page) == []


def test_swagger_ui_renders_under_its_policy(page, live_server):  # noqa: F811
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=15_000)  # the operations were rendered by the script
    assert csp_violations(page) == []
