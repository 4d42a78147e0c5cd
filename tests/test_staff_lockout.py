"""Staff logins (SPEC §4): the admin's login page, which the analysts' workspace uses too, locks a
user name from an address at the 5th wrong password: that answer and every later attempt — right
password or not — are 429 with Retry-After and a page that says the sign-in is locked
(django-axes, attempts kept in the database)."""

from datetime import timedelta

import pytest
from django.test import Client

from apps.accounts.models import User
from apps.accounts.roles import ANALYST, sync_role_groups
from tests.factories import IssuerFactory, make_staff

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"
LOGIN = "/admin/login/"


@pytest.fixture
def admin_user():
    return User.objects.create_superuser(username="root", password=PASSWORD, email="root@bank.example")


@pytest.fixture
def analyst_user():
    sync_role_groups()
    user = make_staff(IssuerFactory(), ANALYST, username="hanako")
    user.set_password(PASSWORD)
    user.save()
    return user


def login(client: Client, username: str, password: str, next_url: str = "/admin/"):
    return client.post(f"{LOGIN}?next={next_url}", {"username": username, "password": password, "next": next_url})


def assert_locked(response):
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    assert b"Sign-in temporarily locked" in response.content and b'name="password"' not in response.content
    assert "_auth_user_id" not in response.wsgi_request.session


def test_the_sixth_admin_login_is_locked_out_even_with_the_right_password(admin_user):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(4):
        response = login(client, "root", "wrong password")
        assert response.status_code == 200 and b"Please enter the correct username" in response.content
    assert_locked(login(client, "root", "wrong password"))
    assert_locked(login(client, "root", PASSWORD))
    assert client.get("/admin/").status_code == 302  # still not signed in
    # What axes keeps of the attempts: never the password.
    from axes.models import AccessAttempt

    kept = " ".join(f"{a.get_data} {a.post_data}" for a in AccessAttempt.objects.all())
    assert "wrong password" not in kept and PASSWORD not in kept


def test_the_analyst_login_is_locked_out_too(analyst_user):
    client = Client(REMOTE_ADDR="203.0.113.8")
    for _ in range(4):
        assert login(client, "hanako", "wrong password", next_url="/analyst/").status_code == 200
    assert_locked(login(client, "hanako", "wrong password", next_url="/analyst/"))
    assert_locked(login(client, "hanako", PASSWORD, next_url="/analyst/"))
    assert client.get("/analyst/").status_code == 302


def test_the_lock_is_per_user_name_and_address(admin_user, analyst_user):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        login(attacker, "root", "wrong password")
    assert_locked(login(attacker, "root", PASSWORD))
    # The same user from the office, and another user from the attacker's address, sign in.
    office = Client(REMOTE_ADDR="198.51.100.1")
    assert login(office, "root", PASSWORD).status_code == 302
    assert login(Client(REMOTE_ADDR="203.0.113.9"), "hanako", PASSWORD, next_url="/analyst/").status_code == 302


def test_behind_a_trusted_proxy_the_forwarded_address_is_locked(settings, admin_user):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.5"
    for i in range(5):
        # Whatever the attacker writes first in X-Forwarded-For, the proxy's entry is what counts.
        login(Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.10"), "root", "wrong password")
    assert_locked(login(Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="192.0.2.77, 203.0.113.10"), "root", PASSWORD))
    # Another client behind the same proxy is not locked.
    assert login(Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.2"), "root", PASSWORD).status_code == 302


def test_a_right_password_before_the_limit_resets_the_count(admin_user):
    client = Client(REMOTE_ADDR="203.0.113.11")
    for _ in range(4):
        login(client, "root", "wrong password")
    assert login(client, "root", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        assert login(client, "root", "wrong password").status_code == 200
    assert login(client, "root", PASSWORD).status_code == 302


def test_the_lock_ends_after_the_cool_off(settings, admin_user):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    client = Client(REMOTE_ADDR="203.0.113.12")
    for _ in range(5):
        login(client, "root", "wrong password")
    assert login(client, "root", PASSWORD).status_code == 429
    import time

    time.sleep(1.5)
    assert login(client, "root", PASSWORD).status_code == 302
